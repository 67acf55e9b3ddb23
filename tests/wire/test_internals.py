"""The parts of psycopg and psycopg_pool that are not their documented API, all looked up in `pgdecor._wire.internals`,
pinned one by one by what they do (the shape of what they return included): a release that changes one fails here,
by name, rather than somewhere in a stub's call. What pgdecor does when one changes anyway is in
tests/wire/test_internals_drift.py."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import threading
from collections import OrderedDict, deque
from typing import Any

import psycopg
import pytest
from psycopg import pq
from psycopg.adapt import Dumper, PyFormat, Transformer
from psycopg_pool import ConnectionPool

from pgdecor._wire import generators as _generators
from pgdecor._wire import internals as _internals


def test_every_private_is_found_in_this_psycopg() -> None:
    """Nothing the lean call path uses is missing from the psycopg the suite runs on."""
    assert _internals.look_up() is None
    assert _internals.copy_formats is not None


def test_placeholders_convert_to_numbered_parameters_with_their_formats() -> None:
    """``_query2pg`` gives exactly four things, of which pgdecor reads the query and its parameters' formats."""
    converted = _internals.query2pg(b"SELECT %s, %b, %t, '%%'", "utf-8")
    assert len(converted) == 4
    query, formats, order, _parts = converted
    assert query == b"SELECT $1, $2, $3, '%'"
    assert formats == [PyFormat.AUTO, PyFormat.BINARY, PyFormat.TEXT]
    assert order is None
    named = _internals.query2pg(b"SELECT %(a)s, %(b)b, %(a)s", "utf-8")
    assert len(named) == 4
    assert named[:3] == (b"SELECT $1, $2, $1", [PyFormat.AUTO, PyFormat.BINARY], ["a", "b"])


def test_prepared_statements_are_named_by_query_and_types(users: str) -> None:
    """The prepare manager keeps ``(query, types) -> name``, names ``_pg3_<n>`` from ``_prepared_idx`` (which
    pgdecor sets behind a pooler), and the name is the server's prepared statement."""
    with psycopg.connect(users) as conn:
        manager = _internals.prepare_manager(conn)
        assert isinstance(manager, _internals.PrepareManager)
        _internals.set_prepared_index(manager, 4242)
        assert _internals.prepared_index(manager) == 4242
        conn.cursor().execute("SELECT %b::int", [1], prepare=True)
        query = _internals.query2pg(b"SELECT %b::int", "utf-8")[0]
        tx = Transformer(conn)
        tx.dump_sequence([1], [PyFormat.BINARY])
        names = _internals.prepared_names(manager)
        assert isinstance(names, OrderedDict)
        assert dict(names) == {(query, tx.types or ()): b"_pg3_4242"}
        assert all(type(name) is bytes for name in names.values())
        assert _internals.prepared_index(manager) == 4243
        server = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
        assert ("_pg3_4242",) in server


def test_the_managers_threshold_is_the_connections(users: str) -> None:
    """The manager's ``prepare_threshold`` is the connection's: None where prepared statements are off."""
    with psycopg.connect(users) as conn:
        manager = _internals.prepare_manager(conn)
        assert _internals.prepare_threshold(manager) == conn.prepare_threshold == 5
        conn.prepare_threshold = None
        assert _internals.prepare_threshold(manager) is None


def test_statements_to_deallocate_wait_in_to_flush_until_a_cursor_runs(users: str) -> None:
    """What the manager has still to deallocate (all of its statements, once cleared: a ``None``) waits in
    ``_to_flush``, a deque, which the wire takes as work for a cursor; the next statement psycopg runs
    deallocates it. A statement evicted by a cursor's execution is deallocated by it."""
    with psycopg.connect(users) as conn:
        manager: Any = _internals.prepare_manager(conn)  # its `clear` too, which psycopg calls
        assert isinstance(_internals.to_flush(manager), deque)
        conn.prepared_max = 1
        cur = conn.cursor()
        cur.execute("SELECT 1", prepare=True)
        (first,) = _internals.prepared_names(manager).values()
        cur.execute("SELECT 2", prepare=True)
        assert first not in _internals.prepared_names(manager).values()
        assert not _internals.to_flush(manager)

        def server() -> set[str]:
            return {name for (name,) in conn.execute("SELECT name FROM pg_prepared_statements").fetchall()}

        assert first.decode() not in server()
        manager.clear()
        assert list(_internals.to_flush(manager)) == [None]
        assert not _internals.prepared_names(manager)
        server()  # deallocates, after it ran
        assert not _internals.to_flush(manager)
        assert server() == set()


class _Key:
    def __init__(self, query: bytes, types: tuple[int, ...]) -> None:
        self.query, self.types = query, types


def test_the_prepare_manager_answers_and_keeps_its_lru_order_through_its_own_methods(users: str) -> None:
    """``get`` gives ``(YES, name)`` for a prepared ``(query, types)`` and ``(SHOULD, name)`` for one to prepare;
    ``maybe_add_to_cache`` of a YES moves it to the recent end and needs no ``validate``; ``key`` is
    ``(query, types)``; `lru_is_a_move` finds that out."""
    with psycopg.connect(users) as conn:
        manager = _internals.prepare_manager(conn)
        cur = conn.cursor()
        cur.execute("SELECT %b::int", [1], prepare=True)
        cur.execute("SELECT %b::text", ["x"], prepare=True)
        tx = Transformer(conn)
        tx.dump_sequence([1], [PyFormat.BINARY])
        key = _Key(_internals.query2pg(b"SELECT %b::int", "utf-8")[0], tx.types or ())
        assert _internals.PrepareManager.key(key) == (key.query, key.types)
        answer = manager.get(key)
        assert len(answer) == 2
        prep, name = answer
        assert prep is _internals.YES
        assert name == _internals.prepared_names(manager)[(key.query, key.types)]
        assert next(iter(_internals.prepared_names(manager))) == (key.query, key.types)  # the oldest
        assert manager.maybe_add_to_cache(key, prep, name) is None
        assert list(_internals.prepared_names(manager))[-1] == (key.query, key.types)  # the most recent now
        other = _Key(b"SELECT $1::int8", (20,))
        assert manager.get(other, prepare=True)[0] is _internals.SHOULD
        assert manager.get(other, prepare=False)[0] is _internals.NO
        assert not _internals.to_flush(manager)
        assert _internals.lru_is_a_move() is True


def test_a_command_that_changes_the_catalog_is_validated_away(users: str) -> None:
    """``validate`` after a command that changes what prepared statements depend on (a DROP) forgets them all, as
    psycopg's cursor does: the wire hands it the results it read."""
    with psycopg.connect(users, autocommit=True) as conn:
        manager = _internals.prepare_manager(conn)
        conn.execute("CREATE TEMP TABLE contract_ddl (n int)")
        conn.cursor().execute("SELECT %b::int", [1], prepare=True)
        assert _internals.prepared_names(manager)
        pgconn = conn.pgconn
        pgconn.send_query_params(b"DROP TABLE contract_ddl", None)
        results = _internals.wait(conn)(_generators.results(pgconn, _generators.PSYCOPG))
        key = _Key(b"DROP TABLE contract_ddl", ())
        answer = manager.maybe_add_to_cache(key, _internals.NO, b"")
        assert answer == (key.query, key.types)
        manager.validate(answer, _internals.NO, b"", results)
        assert not _internals.prepared_names(manager)
        assert list(_internals.to_flush(manager)) == [None]


def test_the_connections_wait_drives_our_generators_by_psycopgs_wait_and_ready_values(users: str) -> None:
    """What a generator yields (`WAIT_R`, `WAIT_RW`) is what the connection's wait waits for, what it sends back
    (`READY_R`, `READY_W`) is what became ready, and what the generator returns is what the wait returns: the wire's
    own generators run on it, reading every result of a statement sent through libpq."""
    assert _internals.WAIT_RW == _internals.WAIT_R | _internals.WAIT_W
    assert _internals.READY_R & _internals.READY_W == 0
    with psycopg.connect(users, autocommit=True) as conn:
        conn.pgconn.send_query_params(b"SELECT $1::int + 1 UNION ALL SELECT 2", [b"41"], [23], [0], 0)
        results = _internals.wait(conn)(_generators.results(conn.pgconn, _generators.PSYCOPG))
        assert type(results) is list
        assert all(isinstance(r, pq.PGresult) for r in results)
        assert [[r.get_value(i, 0) for i in range(r.ntuples)] for r in results] == [[b"42", b"2"]]
        assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE


class _LockSeen(Dumper):
    """A dumper that records whether the connection's lock is held while psycopg dumps a statement's values."""

    held: list[bool] = []  # noqa: RUF012 - a record for the test
    conn: Any = None

    def dump(self, obj: Any) -> bytes:
        self.held.append(_internals.lock(self.conn).locked())
        return str(obj).encode()


def test_the_connections_lock_is_what_psycopg_holds_while_it_runs_a_statement(users: str) -> None:
    """``conn.lock`` is a lock (threading's, asyncio's for an async connection) that psycopg holds while it runs a
    statement: the wire holds it the same way."""

    class Seen(_LockSeen):
        oid = 25

    with psycopg.connect(users) as conn:
        lock = _internals.lock(conn)
        assert isinstance(lock, type(threading.Lock()))
        assert not lock.locked()
        Seen.conn = conn
        conn.adapters.register_dumper(complex, Seen)
        Seen.held.clear()
        conn.execute("SELECT %s::text", [1j])
        assert Seen.held == [True]
        assert not lock.locked()

    async def scenario() -> bool:
        async with await psycopg.AsyncConnection.connect(users) as aconn:
            return isinstance(_internals.lock(aconn), asyncio.Lock)

    assert asyncio.run(scenario())


def test_a_pools_idle_connections_are_the_deque_it_lends_from(users: str) -> None:
    """psycopg_pool keeps its idle connections in the deque ``_pool`` (what a forked child makes unusable); a
    connection lent out points back at its pool by ``_pool``, which its idle ones have too (None once returned),
    and a connection of no pool lacks."""
    with ConnectionPool(users, min_size=2, max_size=2, open=True) as pool:
        pool.wait()
        idle = _internals.idle_connections(pool)
        assert idle is not None
        assert len(idle) == 2
        assert all(_internals.pool_of(conn) in (pool, None) for conn in idle)
        with pool.connection() as lent:
            now = _internals.idle_connections(pool)
            assert now is not None
            assert lent not in now
            assert len(now) == 1
            assert _internals.pool_of(lent) is pool
        back = _internals.idle_connections(pool)
        assert back is not None
        assert lent in back
        assert _internals.pool_of(lent) is None
    with psycopg.connect(users) as alone:
        assert _internals.pool_of(alone) is _internals.NO_POOL_ATTRIBUTE


def test_the_connections_wait_drives_a_pipeline_read_as_groups_then_the_sync(users: str) -> None:
    """In pipeline mode, the connection's wait drives the wire's batch reader through its flush (`WAIT_RW`) and
    its reads, a run of results at a time: each execution's results as one group, and the Sync as a group of its
    own."""
    with psycopg.connect(users) as conn:
        conn.cursor().execute("SELECT %b::int + 1", [1], prepare=True)
        (name,) = _internals.prepared_names(_internals.prepare_manager(conn)).values()
        pgconn = conn.pgconn
        pgconn.enter_pipeline_mode()
        try:
            for value in (b"\x00\x01", b"\x00\x29"):  # int2, as psycopg sent 1
                pgconn.send_query_prepared(name, [value], [1], 0)
            pgconn.pipeline_sync()
            read = _generators.BatchRead(3)
            ready = []
            while not read.done:
                got = _internals.wait(conn)(_generators.executions(pgconn, read, _generators.PSYCOPG))
                assert type(got) is list
                ready += got
        finally:
            pgconn.exit_pipeline_mode()
        assert [(i, r.get_value(0, 0)) for i, r in ready] == [(0, b"2"), (1, b"42")]
        assert [[r.get_value(0, 0) for r in g] for g in read.groups[:2]] == [[b"2"], [b"42"]]
        assert [r.status for r in read.groups[2]] == [psycopg.pq.ExecStatus.PIPELINE_SYNC]


def test_copy_rows_are_formatted_and_parsed_by_psycopgs_row_functions(users: str) -> None:
    """psycopg's COPY row functions, which COPY stubs use a batch at a time: rows formatted in binary (with the
    types set) and in text (by their values' types) are what the server stores, and the rows the server sends
    parse back; in text, once the transformer is given the COPY's result, whose number of columns it reads."""
    formats = _internals.copy_formats
    assert formats is not None
    header, trailer = b"PGCOPY\n\xff\r\n\x00" + bytes(8), b"\xff\xff"
    rows = [(1, "one"), (2, None), (3, "tab\there")]
    with psycopg.connect(users) as conn:
        conn.execute("CREATE TEMP TABLE pairs (n int, t text)")
        tx = Transformer(conn)
        tx.set_dumper_types([23, 25], pq.Format.BINARY)
        binary = bytearray(header)
        for row in rows[:2]:
            formats.format_binary(row, tx, binary)
        with conn.cursor().copy("COPY pairs FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(binary + trailer)
        text = bytearray()
        formats.format_text(rows[2], Transformer(conn), text)
        with conn.cursor().copy("COPY pairs FROM STDIN (FORMAT TEXT)") as copy:
            copy.write(text)
        assert conn.execute("SELECT * FROM pairs ORDER BY n").fetchall() == rows
        for statement, fmt, parse in (
            ("COPY (SELECT * FROM pairs ORDER BY n) TO STDOUT (FORMAT BINARY)", pq.Format.BINARY, formats.parse_binary),
            ("COPY (SELECT * FROM pairs ORDER BY n) TO STDOUT (FORMAT TEXT)", pq.Format.TEXT, formats.parse_text),
        ):
            cur = conn.cursor()
            with cur.copy(statement) as copy:
                tx = Transformer(conn)
                tx.set_pgresult(cur.pgresult, set_loaders=False)
                tx.set_loader_types([23, 25], fmt)
                data = [bytes(chunk) for chunk in copy]
            if fmt == pq.Format.BINARY:  # the header before the first row; the trailer alone at the end
                data = [data[0][len(header) :], *data[1:-1]]
            assert [parse(row, tx) for row in data] == rows


#: The ways a pipeline raises: a statement that ends its backend (an error, then the connection closed: where
#: psycopg's own read keeps the error in a cycle), a connection lost under it, a statement that fails.
_FAILURES = {
    "ended backend": ("SELECT pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid())", psycopg.OperationalError),
    "lost connection": ("SELECT 1", psycopg.OperationalError),
    "failed statement": ("SELECT 1 / 0", psycopg.errors.DivisionByZero),
}


def _shut(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """Lose *conn*'s connection under it: its socket shut both ways, as a network that drops it would."""
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def _fails(users: str, failure: str) -> type[BaseException] | None:
    sql, _ = _FAILURES[failure]
    conn = psycopg.connect(users, autocommit=True)
    try:
        with conn.pipeline() as pipeline:
            _internals.unlink(pipeline)
            assert isinstance(pipeline, psycopg.Pipeline)
            assert type(pipeline) is not psycopg.Pipeline
            conn.execute("BEGIN")
            conn.cursor().execute(sql)
            if failure == "lost connection":
                _shut(conn)
    except psycopg.Error as err:
        return type(err)
    finally:
        conn.close()
    return None


async def _afails(users: str, failure: str) -> type[BaseException] | None:
    sql, _ = _FAILURES[failure]
    conn = await psycopg.AsyncConnection.connect(users, autocommit=True)
    try:
        async with conn.pipeline() as pipeline:
            _internals.unlink(pipeline)
            assert isinstance(pipeline, psycopg.AsyncPipeline)
            assert type(pipeline) is not psycopg.AsyncPipeline
            await conn.execute("BEGIN")
            await conn.cursor().execute(sql)
            if failure == "lost connection":
                _shut(conn)
    except psycopg.Error as err:
        return type(err)
    finally:
        await conn.close()
    return None


def _cyclic_psycopg_objects() -> int:
    """psycopg's objects that only the cyclic collector would free (freed now)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return sum(type(o).__module__.startswith("psycopg") for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()


@pytest.mark.parametrize("failure", list(_FAILURES))
def test_a_pipeline_unlink_made_raises_as_psycopgs_and_leaves_no_cycle(users: str, failure: str) -> None:
    """`unlink` makes psycopg's pipeline (``conn.pipeline()``'s, sync and async) one of a subclass whose reads
    (`PIPELINE_READS`) clear their frame when they raise: it raises what psycopg's raises, and leaves nothing for
    the cyclic collector, however it fails (several times each: when the server's answer and the end of the
    connection come in one read or two differs)."""
    assert _internals.unlinks()
    _, expected = _FAILURES[failure]
    gc.collect()
    gc.disable()
    try:
        raised = [_fails(users, failure) for _ in range(3)]
        raised += [asyncio.run(_afails(users, failure)) for _ in range(3)]
        left = _cyclic_psycopg_objects()
    finally:
        gc.enable()
    assert all(kind is not None and issubclass(kind, expected) for kind in raised), raised
    assert left == 0


def test_a_pipeline_reads_its_results_through_the_reads_unlink_wraps(users: str) -> None:
    """psycopg's pipeline reads what its statements return through its own ``_communicate_gen`` and
    ``_fetch_gen``, looked up on the pipeline (a subclass's are the ones run), as its cursors do in it."""
    read: list[str] = []

    class Recording(psycopg.Pipeline):
        def _communicate_gen(self) -> Any:
            read.append("communicate")
            return super()._communicate_gen()

        def _fetch_gen(self, *, flush: bool) -> Any:
            read.append("fetch")
            return super()._fetch_gen(flush=flush)

    assert _internals.PIPELINE_READS == ("_communicate_gen", "_fetch_gen")
    with psycopg.connect(users, autocommit=True) as conn:
        with conn.pipeline() as pipeline:
            assert type(pipeline) is psycopg.Pipeline
            pipeline.__class__ = Recording
            cur = conn.cursor()
            cur.execute("SELECT 1")
            assert read == ["communicate"]
        assert cur.fetchone() == (1,)
    assert read[-2:] == ["communicate", "fetch"]
