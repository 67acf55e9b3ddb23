"""The parts of psycopg that are not its documented API, on which pgdecor's lean call path (`_wire`) and its
pooler guard (`_poolers`) rely, pinned by what they do: a psycopg release that changes one fails here, by name,
rather than somewhere in a stub's call."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import _preparing, generators, pq, waiting
from psycopg._queries import _query2pg
from psycopg.adapt import PyFormat, Transformer

from pgdecor import _wire_guard


def test_placeholders_convert_to_numbered_parameters_with_their_formats() -> None:
    query, formats, *_ = _query2pg(b"SELECT %s, %b, %t, '%%'", "utf-8")
    assert query == b"SELECT $1, $2, $3, '%'"
    assert formats == [PyFormat.AUTO, PyFormat.BINARY, PyFormat.TEXT]


def test_prepared_statements_are_named_by_query_and_types(users: str) -> None:
    """The prepare manager keeps ``(query, types) -> name``, names ``_pg3_<n>`` from ``_prepared_idx``, and the name
    is the server's prepared statement."""
    with psycopg.connect(users) as conn:
        manager: Any = conn._prepared
        assert isinstance(manager._prepared_idx, int)
        first = manager._prepared_idx
        cur = conn.cursor()
        cur.execute("SELECT %b::int", [1], prepare=True)
        query, _, *_ = _query2pg(b"SELECT %b::int", "utf-8")
        tx = Transformer(conn)
        tx.dump_sequence([1], [PyFormat.BINARY])
        name = manager._names[(query, tx.types or ())]
        assert name == f"_pg3_{first}".encode()
        assert manager.prepare_threshold == conn.prepare_threshold
        server = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
        assert (name.decode(),) in server
        manager.clear()
        assert manager._names == {}


def test_the_execute_generator_runs_on_the_connections_wait(users: str) -> None:
    """``conn.wait(generators.execute(pgconn))`` reads every result of a query sent through libpq."""
    with psycopg.connect(users, autocommit=True) as conn:
        conn.pgconn.send_query_params(b"SELECT $1::int + 1", [b"41"], [23], [0], 0)
        results = conn.wait(generators.execute(conn.pgconn))
        assert [r.get_value(0, 0) for r in results] == [b"42"]
    assert callable(waiting.wait_async)


class _Key:
    def __init__(self, query: bytes, types: tuple[int, ...]) -> None:
        self.query, self.types = query, types


def test_the_prepare_manager_answers_and_keeps_its_lru_order_through_its_own_methods(users: str) -> None:
    """``get`` says YES with the name for a prepared ``(query, types)``; ``maybe_add_to_cache`` of a YES moves it to
    the recent end and needs no ``validate``; ``_to_flush`` holds what is still to deallocate."""
    with psycopg.connect(users) as conn:
        manager: Any = conn._prepared
        cur = conn.cursor()
        cur.execute("SELECT %b::int", [1], prepare=True)
        cur.execute("SELECT %b::text", ["x"], prepare=True)
        tx = Transformer(conn)
        tx.dump_sequence([1], [PyFormat.BINARY])
        key = _Key(_query2pg(b"SELECT %b::int", "utf-8")[0], tx.types or ())
        prep, name = manager.get(key)
        assert prep is _preparing.Prepare.YES
        assert name == manager._names[(key.query, key.types)]
        assert next(iter(manager._names)) == (key.query, key.types)  # the oldest
        assert manager.maybe_add_to_cache(key, prep, name) is None
        assert list(manager._names)[-1] == (key.query, key.types)  # the most recent now
        assert not manager._to_flush
        assert callable(manager.validate)


def test_a_pipeline_of_prepared_executions_reads_as_groups_then_the_sync(users: str) -> None:
    """In pipeline mode, each execution's results come as one group from ``generators.execute`` on the connection's
    wait, and the Sync as a group of its own."""
    with psycopg.connect(users) as conn:
        conn.cursor().execute("SELECT %b::int + 1", [1], prepare=True)
        (name,) = conn._prepared._names.values()
        pgconn = conn.pgconn
        pgconn.enter_pipeline_mode()
        try:
            for value in (b"\x00\x01", b"\x00\x29"):  # int2, as psycopg sent 1
                pgconn.send_query_prepared(name, [value], [1], 0)
            pgconn.pipeline_sync()
            groups = [conn.wait(generators.execute(pgconn)) for _ in range(3)]
        finally:
            pgconn.exit_pipeline_mode()
        assert [[r.get_value(0, 0) for r in g] for g in groups[:2]] == [[b"2"], [b"42"]]
        assert [r.status for r in groups[2]] == [psycopg.pq.ExecStatus.PIPELINE_SYNC]


def test_copy_rows_are_formatted_and_parsed_by_psycopgs_row_functions(users: str) -> None:
    """psycopg's COPY row functions, which COPY stubs use a batch at a time: rows formatted in binary (with the
    types set) and in text (by their values' types) are what the server stores, and the rows the server sends
    parse back; in text, once the transformer is given the COPY's result, whose number of columns it reads."""
    formats = _wire_guard._copy_formats
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
