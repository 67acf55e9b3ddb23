"""The lean call path proves itself: before its first call on a connection it checks that it does what psycopg
would, turns itself off for the process (one WARNING, counted) when it would not, and keeps psycopg's own rules for
prepared statements: their LRU order and their invalidation."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import _queries

from pgdecor import MappingError, NotFoundError, counters, query, session
from pgdecor._wire import guard as _wire_guard
from pgdecor._wire import internals as _internals
from pgdecor._wire import wire as _wire
from pgdecor._wire import wire_async as _wire_async
from pgdecor._wire import wire_base as _wire_base
from tests.usercode.userdb import User, aadd_user, add_user, aget_user, count_users, get_user

#: The hot statement of `get_user`, as the server shows it.
HOT = "%get_user%"


@query("SELECT %(n)s::int AS n")
def echo(n: int) -> int: ...


@pytest.fixture
def fresh_switch(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The wire switched on (also where ``PGDECOR_WIRE=off`` switched it off: these tests are of the wire itself),
    with a fresh conversion cache: whatever a test turns off is restored."""
    if _internals.missing is not None:  # pragma: no cover - a psycopg without what the wire uses
        pytest.skip("this psycopg lacks what the wire uses")
    monkeypatch.setattr(_wire.switch, "on", True)
    monkeypatch.setattr(_wire.switch, "reason", None)
    monkeypatch.setattr(_wire_base, "_converted", {})
    return _wire.switch


def test_a_wire_that_cannot_find_psycopgs_statements_turns_itself_off_loudly(
    users: str, fresh_switch: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A psycopg whose placeholder conversion no longer matches the keys of its prepared statements (simulated):
    the self-test sees that the wire does not find the statement psycopg prepared, and every call goes through
    cursors from then on, right, with one WARNING and the counter saying so; never a silent slowdown."""
    real = _queries._query2pg

    def shifted(query: bytes, encoding: str) -> Any:
        converted, *rest = real(query, encoding)
        return (converted + b" ", *rest)

    monkeypatch.setattr(_internals, "query2pg", shifted)
    before = counters.wire_disabled
    with caplog.at_level(logging.WARNING, logger="pgdecor"), psycopg.connect(users) as conn, session(conn):
        results = [get_user(1) for _ in range(5)]
    assert results == [User(1, "ann", "ann@example.org")] * 5
    assert fresh_switch.on is False
    assert "does not find it" in (fresh_switch.reason or "")
    assert counters.wire_disabled == before + 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "cursors from now on" in r.message]
    assert len(warnings) == 1


def test_a_change_of_psycopgs_prepared_statement_key_is_caught_not_silent(
    users: str, fresh_switch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg keying its prepared statements another way (simulated): the wire would never find them and every
    call would silently go through cursors; the self-test says so instead, once, and counts it."""
    from psycopg import _preparing

    monkeypatch.setattr(_preparing.PrepareManager, "key", staticmethod(lambda q: (q.query, q.types, "v2")))
    before = counters.wire_disabled
    with psycopg.connect(users) as conn, session(conn):
        assert [get_user(2) for _ in range(3)] == [User(2, "bob", None)] * 3
    assert fresh_switch.on is False
    assert counters.wire_disabled == before + 1


def test_a_wire_whose_results_would_differ_turns_itself_off_and_the_call_is_right(
    users: str, fresh_switch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conversion that maps the self-test's statement onto another prepared statement (a psycopg internal that
    changed meaning, simulated): the results differ from the cursor's, so the wire is off before any call of the
    user's goes through it."""
    real = _queries._query2pg
    other = b"SELECT $1::int8 + 1 AS pgdecor_wire_probe, $2::text AS t"

    def remapped(query: bytes, encoding: str) -> Any:
        converted, *rest = real(query, encoding)
        return (other if b"pgdecor_wire_probe" in converted else converted, *rest)

    monkeypatch.setattr(_internals, "query2pg", remapped)
    with psycopg.connect(users) as conn, session(conn):
        conn.execute("SELECT %s::int8 + 1 AS pgdecor_wire_probe, %s::text AS t", _wire_guard._PROBE_ARGS, prepare=True)
        assert [echo(n) for n in range(4)] == [0, 1, 2, 3]
    assert fresh_switch.on is False
    assert "differs from the cursor's" in (fresh_switch.reason or "")


def test_a_database_error_in_the_self_test_leaves_the_session_and_the_wire_alone(
    users: str, fresh_switch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The self-test runs in a savepoint: its statement failing on the server (simulated by a name the server does
    not have, as a pooler losing prepared statements would give) neither aborts the session's transaction nor turns
    the wire off for the process; the call goes through a cursor."""
    original_send = _wire.Wire._send

    def lost_name(self: Any, sql: str, params: Any, binary: bool) -> bool:
        if "pgdecor_wire_probe" not in sql:
            return original_send(self, sql, params, binary)
        self.name = b"_pg3_lost"
        self._prep = _internals.YES
        self.pgconn.send_query_prepared(b"_pg3_lost", [None, None], [0, 0], 1)
        return True

    monkeypatch.setattr(_wire.Wire, "_send", lost_name)
    with psycopg.connect(users) as conn, session(conn):
        assert [echo(n) for n in range(3)] == [0, 1, 2]
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert fresh_switch.on is True


@pytest.mark.parametrize("moved", [True, False], ids=["moved by the wire", "told to psycopg"])
def test_a_hot_statement_stays_prepared_while_others_come_and_go(
    users: str, fresh_switch: Any, monkeypatch: pytest.MonkeyPatch, moved: bool
) -> None:
    """The wire keeps psycopg's LRU order as a cursor would: a stub called every round is never evicted by the
    statements prepared after it (with room for three), so it is prepared once in 20 rounds; whether the wire moves
    the statement itself (where psycopg's manager was found to do just that) or tells psycopg's manager."""
    monkeypatch.setattr(_internals, "LRU_IS_A_MOVE", moved)
    names: set[str] = set()
    with psycopg.connect(users) as conn, session(conn):
        conn.prepared_max = 3
        get_user(1)
        for i in range(20):
            assert get_user(1) == User(1, "ann", "ann@example.org")
            for j in range(2):
                conn.execute(f"SELECT {i * 2 + j} AS cold", prepare=True)
            found = conn.execute("SELECT name FROM pg_prepared_statements WHERE statement LIKE %s", [HOT])
            names.update(name for (name,) in found)
    assert fresh_switch.on is True
    assert len(names) == 1


def test_a_command_that_invalidates_prepared_statements_is_seen_by_psycopgs_own_rule(
    pg_dsn: str, pg_exec: Any, fresh_switch: Any
) -> None:
    """A stub running DDL through the wire: psycopg's own rule (called, not copied) decides what its prepared
    statements become, so every later call works, on any psycopg version."""
    pg_exec("CREATE TABLE t (a int)")

    @query("ALTER TABLE t ALTER COLUMN a SET DEFAULT 1")
    def set_default() -> None: ...

    @query("SELECT count(*) FROM t")
    def count_t() -> int: ...

    with psycopg.connect(pg_dsn) as conn, session(conn):
        for _ in range(8):
            set_default()
            assert count_t() == 0
    assert fresh_switch.on is True


def test_async_wire_tests_itself_too(users: str, fresh_switch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The async wire runs the same self-test, awaited, and turns itself off the same way."""
    real = _queries._query2pg
    monkeypatch.setattr(_internals, "query2pg", lambda q, e: (real(q, e)[0] + b" ", *real(q, e)[1:]))

    async def scenario() -> list[User | None]:
        async with await psycopg.AsyncConnection.connect(users) as conn, session(conn):
            return [await aget_user(1) for _ in range(4)]

    assert asyncio.run(scenario()) == [User(1, "ann", "ann@example.org")] * 4
    assert fresh_switch.on is False


@pytest.fixture
def wire_batches(monkeypatch: pytest.MonkeyPatch, fresh_switch: Any) -> list[int]:
    """The size of each batch the wire pipelined itself, once read (0 for one whose execution failed, or whose read
    was cut short), for the tests of that path."""
    ran: list[int] = []
    sync, asynchronous = _wire.BatchResults.__exit__, _wire_async.AsyncBatchResults.__aexit__

    def count(read: Any, error: BaseException | None) -> None:
        ran.append(0 if isinstance(error, psycopg.Error) else len(read.results))

    def counted(self: Any, *exc: Any) -> None:
        sent = self._lock is not None
        sync(self, *exc)
        if sent:
            count(self, exc[1])

    async def acounted(self: Any, *exc: Any) -> None:
        sent = self._lock is not None
        await asynchronous(self, *exc)
        if sent:
            count(self, exc[1])

    monkeypatch.setattr(_wire.BatchResults, "__exit__", counted)
    monkeypatch.setattr(_wire_async.AsyncBatchResults, "__aexit__", acounted)
    return ran


def test_a_repeated_batch_is_pipelined_by_the_wire_with_the_same_results(users: str, wire_batches: list[int]) -> None:
    """The first batch goes through psycopg's executemany (which prepares the statement); the next ones through
    the wire, one round trip each, with exactly the results of the first: rows, no row, and values whose types
    psycopg sends differently (small and large integers, each its own prepared statement)."""
    argsets = [(1,), (2,), (99,), (40_000,), (3,)]
    expected = [User(1, "ann", "ann@example.org"), User(2, "bob", None), None, None, User(3, "cid", "cid@example.com")]
    with psycopg.connect(users) as conn, session(conn):
        results = [get_user.many(argsets) for _ in range(4)]
    assert results == [expected] * 4
    assert wire_batches == [5, 5, 5]


def test_a_failing_execution_in_a_wire_batch_raises_and_rolls_back(users: str, wire_batches: list[int]) -> None:
    """The server's error for the first execution that fails, with the note naming the stub; the executions after
    it are skipped, the session rolls back, and the connection serves the next session."""
    with psycopg.connect(users) as conn:
        with session(conn):
            add_user.many([(20, "a"), (21, "b")])
            add_user.many([(22, "c"), (23, "d")])  # prepared now: through the wire
        with pytest.raises(psycopg.errors.UniqueViolation) as info, session(conn):
            add_user.many([(24, "e"), (1, "dup"), (25, "f")])
        assert any("tests.usercode.userdb.add_user" in note for note in getattr(info.value, "__notes__", []))
        with session(conn):
            assert count_users() == 7
            assert get_user(24) is None
    assert wire_batches == [2, 0]


def test_async_batches_are_pipelined_too(users: str, wire_batches: list[int]) -> None:
    async def scenario() -> list[list[User | None]]:
        async with await psycopg.AsyncConnection.connect(users) as conn, session(conn):
            return [await aget_user.many([(3,), (99,), (1,)]) for _ in range(3)]

    expected = [User(3, "cid", "cid@example.com"), None, User(1, "ann", "ann@example.org")]
    assert asyncio.run(scenario()) == [expected] * 3
    assert wire_batches == [3, 3]


@query("SELECT %(x)s AS v")
def same(x: int) -> int: ...


def test_a_batch_whose_values_make_several_prepared_statements_reads_each_by_its_own_columns(
    users: str, wire_batches: list[int]
) -> None:
    """Values psycopg sends as different types (int2, int4, int8) make one prepared statement each, whose column
    types differ too: every result is read with its own loaders and layout, never the first one's."""
    argsets = [(1,), (100_000,), (2,), (10_000_000_000,), (-3,)]
    with psycopg.connect(users) as conn, session(conn):
        results = [same.many(argsets) for _ in range(3)]
    assert results == [[1, 100_000, 2, 10_000_000_000, -3]] * 3
    assert wire_batches == [5, 5]


def test_single_calls_with_values_of_several_types_are_each_read_right(users: str, fresh_switch: Any) -> None:
    """The same for calls one at a time: each prepared statement's results by its own layout."""
    values = [1, 100_000, 10_000_000_000, -3] * 4
    with psycopg.connect(users) as conn, session(conn):
        assert [same(v) for v in values] == values


def test_a_row_the_stub_does_not_allow_in_a_wire_batch_raises_after_the_batch_is_read(
    users: str, wire_batches: list[int]
) -> None:
    """Values are made from results as they arrive; a result the stub does not allow (no row for `-> User`) raises
    its pgdecor error once the whole pipeline has been read, so the connection goes on serving the session."""
    from tests.usercode.userdb import load_user

    with psycopg.connect(users) as conn, session(conn):
        assert [u.id for u in load_user.many([(1,), (2,)])] == [1, 2]
        with pytest.raises(
            NotFoundError, match=r"tests\.usercode\.userdb\.load_user: function get_user returned no row"
        ):
            load_user.many([(1,), (99,), (2,)])
        assert [u.id for u in load_user.many([(3,), (1,)])] == [3, 1]
    assert wire_batches == [3, 2]  # the one that raised was read to its end through the wire


def test_a_call_cancelled_during_the_self_test_leaves_the_session_sound(
    users: str, admin: psycopg.Connection[Any], fresh_switch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The self-test (slowed here) runs to its end though its call is cancelled (a savepoint left half-way would
    break the session's transaction): the call is cancelled after it, and the session goes on and commits."""
    slow = "SELECT %s::int8 AS pgdecor_wire_probe, %s::text AS t FROM pg_sleep(0.3)"
    monkeypatch.setattr(_wire_async, "_PROBE", slow)

    async def scenario() -> tuple[bool, int]:
        async with await psycopg.AsyncConnection.connect(users) as conn:
            async with session(conn):
                await aget_user(1)  # through a cursor: the next call is the wire's first
                task = asyncio.create_task(aget_user(1))
                probe = "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.3)'"
                while not admin.execute(probe).fetchone():  # noqa: ASYNC110 - the server is what is waited for
                    await asyncio.sleep(0)
                task.cancel()
                cancelled = False
                try:
                    await task
                except asyncio.CancelledError:
                    cancelled = True
                assert conn in _wire_guard._tested  # the self-test ran to its end, and passed
                await aadd_user(50, "after")
            async with session(conn):
                return cancelled, len(await aget_user.many([(50,), (1,)]))

    assert asyncio.run(scenario()) == (True, 2)


@query(
    "SELECT i AS id, 'user ' || i AS name, CASE WHEN i %% 3 = 0 THEN NULL ELSE i || '@example.org' END AS email"
    " FROM generate_series(1, %(n)s) AS i"
)
def made_users(n: int) -> list[User]: ...


@query(
    "SELECT i AS id, CASE WHEN i <> %(bad)s THEN 'user ' || i END AS name, NULL AS email"
    " FROM generate_series(1, %(n)s) AS i"
)
def named_users(n: int, bad: int) -> list[User]: ...


@query(
    "SELECT i / CASE WHEN i = %(bad)s THEN 0 ELSE 1 END AS id, 'user ' || i AS name, NULL AS email"
    " FROM generate_series(1, %(n)s) AS i"
)
def failing_users(n: int, bad: int) -> list[User]: ...


def _expected(n: int) -> list[User]:
    return [User(i, f"user {i}", None if i % 3 == 0 else f"{i}@example.org") for i in range(1, n + 1)]


@pytest.fixture
def collector_on() -> Iterator[None]:
    """The cyclic garbage collector running (the suite runs with it off), and running still after the test."""
    gc.enable()
    try:
        yield
        assert gc.isenabled()
    finally:
        gc.disable()


@pytest.fixture
def chunked_reads(monkeypatch: pytest.MonkeyPatch, fresh_switch: Any, collector_on: None) -> list[int]:
    """The chunks of each result the wire read as it came (where libpq reads chunks), for the tests of that path;
    with the collector on, which reading in chunks pauses and resumes. A read the wire did not send (psycopg had
    not prepared the statement) has no chunks, and is left out."""
    read: list[int] = []
    reads: list[Any] = []
    sync, asynchronous = _wire.Chunks.__next__, _wire_async.AsyncChunks.__anext__

    def count(chunks: Any, ready: list[Any]) -> list[Any]:
        if not reads or reads[-1] is not chunks:
            reads.append(chunks)
            read.append(0)
        read[-1] += len(ready)
        return ready

    def counted(self: Any) -> Any:
        return count(self, sync(self))

    async def acounted(self: Any) -> Any:
        return count(self, await asynchronous(self))

    monkeypatch.setattr(_wire.Chunks, "__next__", counted)
    monkeypatch.setattr(_wire_async.AsyncChunks, "__anext__", acounted)
    return read


def test_a_large_result_is_read_in_chunks_as_it_comes_with_the_same_rows(users: str, chunked_reads: list[int]) -> None:
    """Once a stub's result had `CHUNK` rows or more, its next one is read in chunks as the server sends them
    (where libpq can), made into values while the rest comes: the same values as read whole, across sessions; a
    small result after a large one, and an empty one, are read right too, and the collector is running after."""
    sizes = [2500, 2500, 2500, 3, 0, 1000, 2001]
    with psycopg.connect(users) as conn:
        for n in sizes:
            with session(conn):
                assert made_users(n) == _expected(n)
    # The first call goes through a cursor, which has psycopg prepare the statement at the second; then chunks of
    # 1000 rows (the first small result is read in chunks too: the one before was large).
    assert chunked_reads == ([3, 1, 3] if _wire.CHUNKED_ROWS else [])


def test_async_large_results_are_read_in_chunks_too(users: str, chunked_reads: list[int]) -> None:
    @query(
        "SELECT i AS id, 'user ' || i AS name, CASE WHEN i %% 3 = 0 THEN NULL ELSE i || '@example.org' END AS email"
        " FROM generate_series(1, %(n)s) AS i"
    )
    async def amade_users(n: int) -> list[User]: ...

    async def scenario() -> list[list[User]]:
        async with await psycopg.AsyncConnection.connect(users) as conn, session(conn):
            return [await amade_users(n) for n in (1500, 1500, 1500, 10)]

    assert asyncio.run(scenario()) == [_expected(1500)] * 3 + [_expected(10)]
    assert chunked_reads == ([2, 1] if _wire.CHUNKED_ROWS else [])  # as in the sync test


@query("SELECT %(n)s::int + 1 AS n")
def echo_next(n: int) -> int: ...


@query("SELECT %(n)s::int AS n")
async def aecho(n: int) -> int: ...


@query("SELECT %(n)s::int + 1 AS n")
async def aecho_next(n: int) -> int: ...


def test_a_batch_right_after_a_result_read_in_chunks_reads_its_own_results(
    users: str, chunked_reads: list[int]
) -> None:
    """libpq keeps a statement's chunked rows mode for the first statement of a pipeline entered next: a batch run
    right after a result read in chunks gets every value right, both through the wire's pipeline and (its statement
    not prepared yet) through psycopg's."""
    argsets = [(i,) for i in range(1200)]
    with psycopg.connect(users) as conn, session(conn):
        for _ in range(3):
            assert echo.many(argsets) == list(range(1200))
            assert made_users(2000) == _expected(2000)
        assert echo.many(argsets) == list(range(1200))  # through the wire's pipeline
        assert made_users(2000) == _expected(2000)
        assert echo_next.many(argsets) == [i + 1 for i in range(1200)]  # new: through psycopg's pipeline
    assert chunked_reads == ([2, 2] if _wire.CHUNKED_ROWS else [])


def test_an_async_batch_right_after_a_result_read_in_chunks_reads_its_own_results(
    users: str, chunked_reads: list[int]
) -> None:
    """As in a sync session."""

    @query(
        "SELECT i AS id, 'user ' || i AS name, CASE WHEN i %% 3 = 0 THEN NULL ELSE i || '@example.org' END AS email"
        " FROM generate_series(1, %(n)s) AS i"
    )
    async def amade_users(n: int) -> list[User]: ...

    argsets = [(i,) for i in range(1200)]

    async def scenario() -> None:
        async with await psycopg.AsyncConnection.connect(users) as conn, session(conn):
            for _ in range(3):
                assert await aecho.many(argsets) == list(range(1200))
                assert await amade_users(2000) == _expected(2000)
            assert await aecho.many(argsets) == list(range(1200))
            assert await amade_users(2000) == _expected(2000)
            assert await aecho_next.many(argsets) == [i + 1 for i in range(1200)]

    asyncio.run(scenario())
    assert chunked_reads == ([2, 2] if _wire.CHUNKED_ROWS else [])


#: Rows of a statement that psycopg runs in its own pipelines below: more than a chunk, were they read in chunks.
_ROWS_SQL = "SELECT %s::int AS n FROM generate_series(1, 1500)"


def _rows_of_each(cur: Any) -> list[tuple[int, int]]:
    """How many rows each result of *cur* has, and the value in them."""
    out = []
    while True:
        rows = cur.fetchall()
        out.append((len(rows), rows[0][0]))
        if not cur.nextset():
            return out


@pytest.mark.parametrize(
    "after", ["a batch of one call", "a batch with wires off", "the user's executemany", "the user's pipeline"]
)
def test_psycopgs_pipelines_right_after_a_result_read_in_chunks_read_their_own_results(
    users: str, chunked_reads: list[int], fresh_switch: Any, after: str
) -> None:
    """A result read in chunks leaves the connection as it found it, although libpq would keep its chunked rows
    mode for the first statement of the pipeline entered next: psycopg's pipelines run next on the connection get
    every result whole and right, whether a stub's batch goes through psycopg's ``executemany`` (a batch of one
    call, or any batch once wires are off) or the user runs ``executemany`` or ``pipeline()`` on the session's
    connection; with their statements prepared already, so that no Parse comes first to take the mode."""
    with psycopg.connect(users) as conn, session(conn):
        echo.many([(1,), (2,)])
        conn.cursor().executemany(_ROWS_SQL, [(1,), (2,)], returning=True)
        for _ in range(3):
            assert made_users(2000) == _expected(2000)
        if after == "a batch of one call":
            assert echo.many([(7,)]) == [7]
        elif after == "a batch with wires off":
            fresh_switch.on = False
            assert echo.many([(i,) for i in range(1200)]) == list(range(1200))
        elif after == "the user's executemany":
            cur = conn.cursor()
            cur.executemany(_ROWS_SQL, [(3,), (4,)], returning=True)
            assert _rows_of_each(cur) == [(1500, 3), (1500, 4)]
        else:
            with conn.pipeline():
                cur = conn.execute(_ROWS_SQL, [5])
                other = conn.execute("SELECT 6")
            assert (_rows_of_each(cur), other.fetchall()) == ([(1500, 5)], [(6,)])
    assert chunked_reads == ([2] if _wire.CHUNKED_ROWS else [])


def test_async_pipelines_right_after_a_result_read_in_chunks_read_their_own_results(
    users: str, chunked_reads: list[int]
) -> None:
    """As in a sync session: a stub's batch of one call, and the user's own pipeline."""

    @query(
        "SELECT i AS id, 'user ' || i AS name, CASE WHEN i %% 3 = 0 THEN NULL ELSE i || '@example.org' END AS email"
        " FROM generate_series(1, %(n)s) AS i"
    )
    async def amade_users(n: int) -> list[User]: ...

    async def scenario() -> tuple[list[int], list[tuple[int, int]], list[tuple[Any, ...]]]:
        async with await psycopg.AsyncConnection.connect(users) as conn, session(conn):
            await aecho.many([(1,), (2,)])
            await conn.cursor().executemany(_ROWS_SQL, [(1,), (2,)], returning=True)
            for _ in range(3):
                assert await amade_users(2000) == _expected(2000)
            one = await aecho.many([(7,)])
            assert await amade_users(2000) == _expected(2000)
            async with conn.pipeline():
                cur = await conn.execute(_ROWS_SQL, [5])
                other = await conn.execute("SELECT 6")
            return one, [(len(rows), rows[0][0]) for rows in [await cur.fetchall()]], await other.fetchall()

    assert asyncio.run(scenario()) == ([7], [(1500, 5)], [(6,)])
    assert chunked_reads == ([2, 2] if _wire.CHUNKED_ROWS else [])


def test_a_server_error_in_the_middle_of_a_chunked_result_raises_and_rolls_back(
    users: str, chunked_reads: list[int]
) -> None:
    """Rows already made are dropped: the server's error raises (with the note naming the stub), the session's
    writes are rolled back, and the connection serves the next session (where psycopg, by its own rule, prepares
    the statement again: an error result makes it forget it)."""
    with psycopg.connect(users) as conn:
        for _ in range(3):
            with session(conn):
                assert len(failing_users(2500, 0)) == 2500
        with pytest.raises(psycopg.errors.DivisionByZero) as info, session(conn):
            add_user(60, "written")
            failing_users(5000, 4500)
        assert any("tests.wire.test_wire.failing_users" in note for note in getattr(info.value, "__notes__", []))
        with session(conn):
            assert get_user(60) is None
            assert [len(failing_users(1200, 0)) for _ in range(3)] == [1200] * 3
    assert chunked_reads == ([3, 4, 2, 2] if _wire.CHUNKED_ROWS else [])


def test_a_row_the_stub_does_not_allow_in_a_chunk_raises_after_the_result_is_read(
    users: str, chunked_reads: list[int]
) -> None:
    """A NULL for a field that takes none, in a chunk after the first: its MappingError once the whole result is
    in, so that the connection goes on serving the session."""
    with psycopg.connect(users) as conn, session(conn):
        for _ in range(3):
            assert len(named_users(2000, 0)) == 2000
        with pytest.raises(MappingError, match=r"column 'name' is NULL"):
            named_users(3000, 2500)
        assert len(named_users(1000, 0)) == 1000
        add_user(61, "after")
    assert chunked_reads == ([2, 3, 1] if _wire.CHUNKED_ROWS else [])


def test_an_async_call_cancelled_in_the_middle_of_a_chunked_result_leaves_the_connection_sound(
    users: str, admin: psycopg.Connection[Any], chunked_reads: list[int]
) -> None:
    """The server stalls after sending 2,499 rows; the call's task is cancelled while it waits for the rest: the
    statement is stopped on the server, the session rolls back, the collector runs again, and the connection
    serves the next session."""

    @query(
        "SELECT i AS id, 'user ' || i || CASE WHEN i = 2500 THEN pg_sleep(30)::text ELSE '' END AS name,"
        " NULL AS email FROM generate_series(1, %(n)s) AS i"
    )
    async def stalling(n: int) -> list[User]: ...

    async def scenario() -> tuple[bool, list[int]]:
        async with await psycopg.AsyncConnection.connect(users) as conn:
            async with session(conn):
                for _ in range(3):
                    assert len(await stalling(2000)) == 2000
            cancelled = False
            try:
                async with session(conn):
                    await aadd_user(70, "cancelled")
                    task = asyncio.create_task(stalling(3000))
                    stalled = "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
                    while not admin.execute(stalled).fetchone():  # noqa: ASYNC110 - the server is what is waited for
                        await asyncio.sleep(0)
                    while _wire.CHUNKED_ROWS and chunked_reads[1:] != [2]:  # noqa: ASYNC110 - as the rows come
                        await asyncio.sleep(0)
                    task.cancel()
                    await task
            except asyncio.CancelledError:
                cancelled = True
            async with session(conn):
                assert await aget_user(70) is None
                return cancelled, [u.id for u in await stalling(3)]

    assert asyncio.run(scenario()) == (True, [1, 2, 3])
    assert chunked_reads == ([2, 2] if _wire.CHUNKED_ROWS else [])


def test_an_async_batch_cancelled_while_the_server_works_leaves_the_connection_sound(
    users: str, admin: psycopg.Connection[Any], wire_batches: list[int]
) -> None:
    """A batch pipelined by the wire whose third execution stalls; the call's task is cancelled while the batch is
    read: the statement is stopped on the server, the pipeline read to its Sync and left, the session rolls back,
    and the connection serves the next session, batches included."""

    @query("SELECT %(n)s::int AS n FROM pg_sleep(CASE WHEN %(n)s::int = 3 THEN 30 ELSE 0 END)")
    async def stalling(n: int) -> int: ...

    async def scenario() -> tuple[bool, list[list[int]]]:
        async with await psycopg.AsyncConnection.connect(users) as conn:
            async with session(conn):
                for _ in range(2):
                    assert await stalling.many([(1,), (2,)]) == [1, 2]
            cancelled = False
            try:
                async with session(conn):
                    await aadd_user(71, "cancelled")
                    task = asyncio.create_task(stalling.many([(1,), (2,), (3,), (4,)]))
                    stalled = "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
                    while not admin.execute(stalled).fetchone():  # noqa: ASYNC110 - the server is what is waited for
                        await asyncio.sleep(0)
                    task.cancel()
                    await task
            except asyncio.CancelledError:
                cancelled = True
            async with session(conn):
                assert await aget_user(71) is None
                return cancelled, [await stalling.many([(5,), (6,)]) for _ in range(2)]

    assert asyncio.run(scenario()) == (True, [[5, 6]] * 2)
    assert wire_batches == [2, 0, 2]  # psycopg prepares the statement again after the rollback, then the wire


@query("SELECT pg_notify('pgdecor_wire', %(payload)s)")
def notify(payload: str) -> None: ...


@pytest.fixture
def wire_calls(monkeypatch: pytest.MonkeyPatch, fresh_switch: Any) -> list[str]:
    """The SQL of each call a wire sent (sync or async), for the tests that need to know the wire was taken."""
    sent: list[str] = []
    sync, asynchronous = _wire.Wire.execute, _wire_async.AsyncWire.execute

    def counted(self: Any, sql: str, *args: Any) -> Any:
        read = sync(self, sql, *args)
        sent.extend([sql] if read else [])
        return read

    async def acounted(self: Any, sql: str, *args: Any) -> Any:
        read = await asynchronous(self, sql, *args)
        sent.extend([sql] if read else [])
        return read

    monkeypatch.setattr(_wire.Wire, "execute", counted)
    monkeypatch.setattr(_wire_async.AsyncWire, "execute", acounted)
    return sent


def test_notifications_that_come_with_a_wire_call_reach_the_connections_handlers(
    users: str, wire_calls: list[str]
) -> None:
    """A notification arriving with a call's result (here each call's own, delivered as its statement commits) is
    handed to psycopg's handlers as a cursor's read would hand it, not left behind in libpq."""
    got: list[str] = []
    with psycopg.connect(users, autocommit=True) as conn:
        conn.execute("LISTEN pgdecor_wire")
        conn.add_notify_handler(lambda n: got.append(n.payload))
        with session(conn, autocommit=True):
            for i in range(4):
                notify(f"n{i}")
    assert got == ["n0", "n1", "n2", "n3"]
    assert len(wire_calls) >= 2


def test_async_notifications_reach_the_handlers_too(users: str, wire_calls: list[str]) -> None:
    @query("SELECT pg_notify('pgdecor_wire', %(payload)s)")
    async def anotify(payload: str) -> None: ...

    async def scenario() -> list[str]:
        got: list[str] = []
        async with await psycopg.AsyncConnection.connect(users, autocommit=True) as conn:
            await conn.execute("LISTEN pgdecor_wire")
            conn.add_notify_handler(lambda n: got.append(n.payload))
            async with session(conn, autocommit=True):
                for i in range(4):
                    await anotify(f"n{i}")
        return got

    assert asyncio.run(scenario()) == ["n0", "n1", "n2", "n3"]
    assert len(wire_calls) >= 2


def test_the_wire_moves_statements_itself_only_where_psycopgs_manager_does_just_that(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shortcut is found out, not assumed: a psycopg whose manager does anything more for a statement run again
    (asks for a validation, keeps counts, leaves the order alone) has wires tell its manager every time instead."""
    from psycopg import _preparing

    assert _internals.lru_is_a_move() is True  # this psycopg: moved to the recent end, nothing else
    real = _preparing.PrepareManager.maybe_add_to_cache

    def asks_for_validation(self: Any, query: Any, prep: Any, name: bytes) -> Any:
        real(self, query, prep, name)
        return self.key(query)

    def leaves_the_order(self: Any, query: Any, prep: Any, name: bytes) -> Any:
        return None if prep is _preparing.Prepare.YES else real(self, query, prep, name)

    for changed in (asks_for_validation, leaves_the_order):
        monkeypatch.setattr(_preparing.PrepareManager, "maybe_add_to_cache", changed)
        assert _internals.lru_is_a_move() is False
