"""Calls after a statement's first skip the cursor (psycopg's prepared statement executed directly, and async, a
socket watch of their own): they must behave exactly as the first call did, also when cancelled, interleaved, or
when psycopg drops its prepared statements."""

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import pq

from pgdecor import Database, Error, MappingError, NotFoundError, procedure, query, session
from tests.usercode.userdb import (
    User,
    aadd_user,
    acount_users,
    add_user,
    aget_user,
    auser_ids,
    auser_row,
    count_users,
    get_user,
    user_ids,
    user_row,
)

T = TypeVar("T")

#: First call through a cursor, second through a cursor that has psycopg prepare it, then the prepared statement.
CALLS = 6  # past psycopg's prepare threshold (5): calls through a cursor are prepared too


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


NUMBERS = "SELECT n, CASE WHEN n %% 2 = 0 THEN 'even' END AS label FROM generate_series(1, %(count)s) AS n"


@dataclass
class Row:
    n: int
    label: str | None


@query(NUMBERS)
async def numbers(count: int) -> list[Row]: ...


@procedure
async def as_json(n: int) -> dict[str, Any]: ...


@procedure("as_json")
def as_json_sync(n: int) -> dict[str, Any]: ...


@query(NUMBERS)
def numbers_sync(count: int) -> list[Row]: ...


AS_JSON = "CREATE FUNCTION as_json(n int) RETURNS jsonb LANGUAGE sql AS $$ SELECT jsonb_build_object('n', n) $$"


#: The statements the connection has prepared for calls (not the wire's self-test, which it prepares once).
PREPARED = "SELECT statement FROM pg_prepared_statements WHERE statement NOT LIKE '%%pgdecor_wire_probe%%' ORDER BY 1"


def sync_prepared(conn: psycopg.Connection[Any]) -> list[str]:
    return [s for (s,) in conn.execute(PREPARED)]


async def prepared(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    cur = await conn.execute(PREPARED)
    return [s for (s,) in await cur.fetchall()]


def test_repeated_calls_return_what_the_first_returned(users: str, pg_exec: Any) -> None:
    """Every result shape, NULLs and no-row results included, is the same on every call of a session."""
    pg_exec(AS_JSON)

    async def scenario() -> None:
        async with session(users):
            for i in range(CALLS):
                assert await aget_user(1) == User(1, "ann", "ann@example.org")
                assert await aget_user(2) == User(2, "bob", None)
                assert await aget_user(99) is None
                assert await acount_users() == 3 + i
                assert await auser_ids() == [1, 2, 3, *range(10, 10 + i)]
                assert await auser_row(2) == {"id": 2, "name": "bob", "email": None}
                await aadd_user(10 + i, f"new{i}")
                assert await as_json(i) == {"n": i}
                rows = await numbers(2500 + i)  # more rows than one fetch chunk
                assert len(rows) == 2500 + i
                assert rows[0] == Row(1, None)
                assert rows[-1] == Row(2500 + i, "even" if i % 2 == 0 else None)

    run(scenario)


def test_repeated_sync_calls_return_what_the_first_returned(users: str, pg_exec: Any) -> None:
    """The same for sync stubs."""
    pg_exec(AS_JSON)
    with session(users):
        for i in range(CALLS):
            assert get_user(1) == User(1, "ann", "ann@example.org")
            assert get_user(2) == User(2, "bob", None)
            assert get_user(99) is None
            assert count_users() == 3 + i
            assert user_ids() == [1, 2, 3, *range(10, 10 + i)]
            assert user_row(2) == {"id": 2, "name": "bob", "email": None}
            add_user(10 + i, f"new{i}")
            assert as_json_sync(i) == {"n": i}
            rows = numbers_sync(2500 + i)
            assert len(rows) == 2500 + i
            assert rows[-1] == Row(2500 + i, "even" if i % 2 == 0 else None)


def test_repeated_sync_calls_use_one_prepared_statement_and_survive_its_loss(users: str) -> None:
    """Sync calls, too, prepare at the second call, reuse it, and prepare again after DEALLOCATE ALL."""
    with psycopg.connect(users) as conn, session(conn):
        assert get_user(1) is not None
        assert sync_prepared(conn) == []
        for _ in range(CALLS):
            assert get_user(1) is not None
        assert len(sync_prepared(conn)) == 1
        conn.execute("DEALLOCATE ALL")
        for _ in range(CALLS):
            assert get_user(1) is not None
        assert len(sync_prepared(conn)) == 1


def test_repeated_calls_use_one_prepared_statement(users: str) -> None:
    """A statement is prepared at its second call on a connection, once for each type of argument, and reused."""

    async def scenario() -> None:
        async with await psycopg.AsyncConnection.connect(users) as conn, session(conn):
            assert (await aget_user(1)) is not None
            assert await prepared(conn) == []
            for _ in range(CALLS):
                assert (await aget_user(1)) is not None
                assert (await aget_user(100_000)) is None  # an int4 argument, where 1 is an int2
            statements = await prepared(conn)
        assert len(statements) == 2
        assert all("get_user" in s for s in statements)

    run(scenario)


def test_statements_are_not_prepared_where_psycopg_would_not(users: str) -> None:
    """With prepared statements off (``prepare_threshold = None``, as behind PgBouncer), none is made."""

    async def scenario() -> None:
        async with await psycopg.AsyncConnection.connect(users, prepare_threshold=None) as conn, session(conn):
            for _ in range(CALLS):
                assert await aget_user(2) == User(2, "bob", None)
            assert await prepared(conn) == []

    run(scenario)


def test_calls_survive_psycopg_dropping_its_prepared_statements(users: str) -> None:
    """DEALLOCATE ALL in a session, DISCARD ALL between sessions, a rolled back session: later calls still work."""

    async def scenario() -> None:
        async with await psycopg.AsyncConnection.connect(users, autocommit=True) as conn:
            async with session(conn):
                for _ in range(CALLS):
                    assert (await aget_user(3)) is not None
                await conn.execute("DEALLOCATE ALL")
                for _ in range(CALLS):
                    assert (await aget_user(3)) is not None
            await conn.execute("DISCARD ALL")
            with pytest.raises(ZeroDivisionError):
                async with session(conn):
                    for _ in range(CALLS):
                        assert (await aget_user(3)) is not None
                    1 / 0  # noqa: B018
            async with session(conn):
                for _ in range(CALLS):
                    assert (await aget_user(3)) is not None

    run(scenario)


@dataclass
class Pair:
    id: int
    a: int
    b: str


def test_results_are_read_by_their_own_columns_after_the_table_changes(pg_dsn: str, pg_exec: Any) -> None:
    """When another connection reorders a table's columns, the server refuses the stale prepared statement once,
    and later calls map the new columns by name: what was learnt about an older statement's columns is never
    applied to another's."""
    pg_exec("CREATE TABLE pair (id int, a int, b text); INSERT INTO pair VALUES (1, 10, 'ten')")

    @query("SELECT * FROM pair WHERE id = %(id)s")
    def pair(id: int) -> Pair: ...

    with psycopg.connect(pg_dsn) as conn:
        with session(conn):
            for _ in range(CALLS):
                assert pair(1) == Pair(1, 10, "ten")
        pg_exec("ALTER TABLE pair DROP COLUMN a; ALTER TABLE pair ADD COLUMN a int; UPDATE pair SET a = 10")
        stale = pytest.raises(psycopg.errors.FeatureNotSupported, match="cached plan must not change result type")
        with stale, session(conn):
            pair(1)
        with session(conn):
            for _ in range(CALLS):
                assert pair(1) == Pair(1, 10, "ten")


@dataclass
class Tagged:
    id: int
    tag: Any


def test_calls_read_text_again_once_a_column_loads_only_from_text(pg_dsn: str, pg_exec: Any) -> None:
    """Results come in binary once every column loads the same from it. When a column's type changes to one that
    loads only from text (a composite, parsed by pgdecor), the calls that meet the change fail, each with its
    reason, and every call after them asks for text and maps the new type."""
    pg_exec("CREATE TABLE tagged (id int, tag int); INSERT INTO tagged VALUES (1, 10)")

    @query("SELECT * FROM tagged WHERE id = %(id)s")
    def tagged(id: int) -> Tagged: ...

    with psycopg.connect(pg_dsn) as conn:
        with session(conn):
            for _ in range(CALLS):
                assert tagged(1) == Tagged(1, 10)
        pg_exec("CREATE TYPE pt AS (x int, y int); ALTER TABLE tagged ALTER COLUMN tag TYPE pt USING ROW(tag, 2)")
        with pytest.raises(psycopg.errors.FeatureNotSupported), session(conn):
            tagged(1)  # the server refuses the prepared statement made for the old columns
        with pytest.raises(MappingError, match=r"tagged: the column types .* changed .* call it again"), session(conn):
            tagged(1)  # asked in binary, as before: the new column cannot be read from it
        with session(conn):
            for _ in range(CALLS):
                assert tagged(1) == Tagged(1, "(10,2)")


def test_database_errors_on_repeated_calls_are_mapped_as_on_the_first(pg_dsn: str, pg_exec: Any) -> None:
    """An error raised by the function is the same exception, with the same cause, on every call."""
    pg_exec("""
        CREATE FUNCTION checked(n int) RETURNS int LANGUAGE plpgsql AS $$
        BEGIN
            IF n > 10 THEN RAISE EXCEPTION 'too big: %', n USING ERRCODE = 'P0002'; END IF;
            RETURN n;
        END $$;
    """)

    @procedure(errors={"P0002": NotFoundError})
    async def checked(n: int) -> int: ...

    async def scenario() -> None:
        for i in range(CALLS):
            with pytest.raises(NotFoundError, match=f"^too big: {11 + i}") as info:
                async with session(pg_dsn):
                    assert await checked(i) == i
                    assert await checked(i) == i
                    await checked(11 + i)
            assert isinstance(info.value.__cause__, psycopg.errors.NoDataFound)

    run(scenario)


def test_concurrent_calls_in_one_session_take_turns(users: str) -> None:
    """Tasks of one session share its connection; their calls take turns and each gets its own result."""

    async def scenario() -> None:
        async with session(users):
            ids = [1, 2, 3, 99] * 10
            found = await asyncio.gather(*(aget_user(i) for i in ids))
        assert [u.id if u is not None else None for u in found] == [1, 2, 3, None] * 10

    run(scenario)


def test_notices_reach_the_connection_handlers(pg_dsn: str, pg_exec: Any) -> None:
    """A function's RAISE NOTICE reaches psycopg's notice handlers on every call."""
    pg_exec("""
        CREATE FUNCTION noisy(n int) RETURNS int LANGUAGE plpgsql AS $$
        BEGIN RAISE NOTICE 'call %', n; RETURN n; END $$;
    """)

    @procedure
    async def noisy(n: int) -> int: ...

    async def scenario() -> list[str]:
        seen: list[str] = []
        async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
            conn.add_notice_handler(lambda d: seen.append(d.message_primary or ""))
            async with session(conn):
                for i in range(CALLS):
                    assert await noisy(i) == i
        return seen

    assert run(scenario) == [f"call {i}" for i in range(CALLS)]


async def until_sleeping(admin: psycopg.Connection[Any], pid: int) -> None:
    """Until the server runs a pg_sleep() for backend *pid* (bounded: fails rather than hangs)."""
    for _ in range(2000):
        if admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'PgSleep'", (pid,)).fetchone():
            return
        await asyncio.sleep(0.005)
    pytest.fail("the long call never started")


def test_cancelled_call_stops_the_statement_and_the_connection_stays_usable(
    pg_dsn: str, pg_exec: Any, admin: psycopg.Connection[Any]
) -> None:
    """Cancelling the task of a running call stops the statement on the server and rolls the session back."""
    pg_exec("CREATE TABLE marks (n int)")

    @query("INSERT INTO marks SELECT %(n)s FROM pg_sleep(%(seconds)s)")
    async def slow_mark(n: int, seconds: float) -> None: ...

    async def scenario() -> None:
        async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
            pid = conn.info.backend_pid

            async def work() -> None:
                async with session(conn):
                    for i in range(CALLS):
                        await slow_mark(i, 0)
                    await slow_mark(100, 60)

            task = asyncio.create_task(work())
            await until_sleeping(admin, pid)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert conn.info.transaction_status == pq.TransactionStatus.IDLE
            state = admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            assert state == ("idle",)
            cur = await conn.execute("SELECT count(*) FROM marks")
            assert await cur.fetchone() == (0,)  # the session's earlier calls were rolled back with it
            async with session(conn):
                await slow_mark(7, 0)
            await conn.commit()
        assert pg_exec("SELECT n FROM marks") == [(7,)]

    run(scenario)


def test_calls_are_logged_on_every_path(users: str, caplog: pytest.LogCaptureFixture) -> None:
    """The DEBUG record of each call is there for repeated calls too."""

    async def scenario() -> None:
        async with session(users):
            for _ in range(CALLS):
                await aget_user(1)

    with caplog.at_level(logging.DEBUG, logger="pgdecor"):
        run(scenario)
    assert sum("aget_user: function get_user in" in r.getMessage() for r in caplog.records) == CALLS


def test_a_call_inside_a_pipeline_block_says_so(users: str) -> None:
    """Rows cannot be read inside the user's `conn.pipeline()`: the error says where to call instead."""

    async def scenario() -> None:
        async with await psycopg.AsyncConnection.connect(users) as conn, session(conn):
            for _ in range(CALLS):
                assert await aget_user(1) is not None
            async with conn.pipeline():
                with pytest.raises(Error, match=r"aget_user: called inside `conn.pipeline\(\)`.*aget_user.many"):
                    await aget_user(1)
            assert await aget_user(1) is not None

    run(scenario)


def test_a_connection_lost_while_a_call_waits_is_a_clear_error(pg_dsn: str, admin: psycopg.Connection[Any]) -> None:
    """The server ending the connection while a repeated call waits for its result: the call raises psycopg's
    OperationalError (it does not hang), the session gives the connection back, and the pool replaces it."""

    @query("SELECT pg_sleep(%(seconds)s)")
    async def nap(seconds: float) -> None: ...

    @query("SELECT pg_backend_pid()")
    async def backend() -> int: ...

    async def scenario() -> None:
        async with Database(pg_dsn, max_size=1) as db:
            pids: list[int] = []
            started = asyncio.Event()

            async def work() -> None:
                async with db.session():
                    pids.append(await backend())
                    started.set()
                    for _ in range(CALLS):
                        await nap(0)
                    await nap(60)

            task = asyncio.create_task(work())
            await started.wait()
            await until_sleeping(admin, pids[0])
            admin.execute("SELECT pg_terminate_backend(%s)", pids)
            with pytest.raises(psycopg.OperationalError):
                await asyncio.wait_for(task, 30)  # bounded: a call left waiting fails the test rather than hangs
            async with db.session():
                assert await backend() != pids[0]
                await nap(0)
            assert db.counters.borrowed == db.counters.released == 2

    run(scenario)


def test_the_wire_is_used_where_it_is_available(users: str) -> None:
    """The lean path is taken unless it is switched off (``PGDECOR_WIRE=off``): a statement is prepared at its second
    call through it, where psycopg's cursors would wait for the sixth. A wire that silently stopped working would
    fail here, not merely run slower."""
    from pgdecor._wire import wire as _wire

    with psycopg.connect(users) as conn, session(conn):
        get_user(1)
        get_user(1)
        prepared_at_second_call = len(sync_prepared(conn))
        wire = _wire.usable(conn)
    switched_off = os.environ.get("PGDECOR_WIRE", "").lower() in ("0", "off", "no", "false")
    assert wire is not switched_off
    assert prepared_at_second_call == (1 if wire else 0)


@contextmanager
def statement_sites(sql: str) -> Iterator[list[tuple[str, ...]]]:
    """Where *sql* is handed to a cursor or a wire to run, as a profiler sees it: the functions of pgdecor's run
    layer on the stack, innermost first, once per execution."""
    sites: list[tuple[str, ...]] = []
    seen: set[FrameType] = set()  # a coroutine's frame is entered again each time it resumes

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        if event != "call" or frame.f_code.co_name != "execute" or frame in seen:
            return
        if frame.f_locals.get("query", frame.f_locals.get("sql")) != sql:
            return
        seen.add(frame)
        callers: list[str] = []
        caller = frame.f_back
        while caller is not None:
            if caller.f_globals.get("__name__", "").startswith("pgdecor._run."):
                callers.append(caller.f_code.co_name)
            caller = caller.f_back
        sites.append(tuple(callers))

    sys.setprofile(profile)
    try:
        yield sites
    finally:
        sys.setprofile(None)
        seen.clear()


def test_every_call_runs_its_statement_from_the_same_path(users: str) -> None:
    """A stub's first call on a server, its first on a connection and every later one send its statement from the
    same place, by the same functions: one path, with what earlier calls learnt looked up, not one per call (an
    async stub's path is the same code: the sync one is generated from it)."""
    sql = numbers_sync.sql
    assert sql is not None
    with statement_sites(sql) as sites:
        for _ in range(2):  # the second session on a connection of its own
            with psycopg.connect(users) as conn, session(conn):
                for _ in range(CALLS):
                    assert numbers_sync(3) == [Row(1, None), Row(2, "even"), Row(3, None)]
    assert len(sites) >= 2 * CALLS
    assert len(set(sites)) == 1, sites


def test_the_run_layer_makes_a_calls_value_once_the_wire_has_returned(users: str) -> None:
    """The wire returns the result it read, and the call's value is made of it by the run layer: no function of the
    run layer runs inside the wire's execution of a call (the layers below never call back up)."""
    inside: list[str] = []
    depth = [0]

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        module = frame.f_globals.get("__name__", "")
        if module == "pgdecor._wire.wire" and frame.f_code.co_name == "execute":
            depth[0] += 1 if event == "call" else -1 if event == "return" else 0
        elif event == "call" and depth[0] and module.startswith("pgdecor._run."):
            inside.append(f"{module}.{frame.f_code.co_name}")

    with psycopg.connect(users) as conn, session(conn):
        for _ in range(CALLS):
            get_user(1)
        sys.setprofile(profile)
        try:
            for _ in range(CALLS):
                assert get_user(1) == User(1, "ann", "ann@example.org")
        finally:
            sys.setprofile(None)
    assert inside == []
