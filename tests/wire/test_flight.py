"""Calls started concurrently in one async session (``asyncio.gather``, tasks) share a round trip: each sends its
statement while the first one's result is awaited, and gets what it would have got had they run one after the
other. Round trips are counted at a proxy (`bench.proxy`) between the pool and the server. Concurrency within a
session is asyncio's own: these tests have no sync twin."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, NamedTuple

import psycopg
import pytest

from bench.proxy import Proxy
from pgdecor import DEFAULT, Database, RolledBackError, procedure, query, transaction
from pgdecor._wire import owed
from tests.fix_proxy import round_trips, through

# Tests of the wire itself: on also where ``PGDECOR_WIRE=off`` turns it off.
pytestmark = pytest.mark.usefixtures("fresh_switch")


class Pair(NamedTuple):
    n: int
    label: str


@query("SELECT %(n)s::int")
async def echo(n: int) -> int: ...


@query("SELECT %(n)s::int AS n, 'n' || %(n)s AS label")
async def pair(n: int) -> Pair: ...


@query("SELECT 100 / %(n)s")
async def share(n: int) -> int: ...


@query("INSERT INTO log (n) VALUES (%(n)s) RETURNING id")
async def logged(n: int) -> int: ...


@query("SELECT pg_catalog.pg_sleep(%(seconds)s)")
async def nap(seconds: float) -> None: ...


@query("INSERT INTO log (n) SELECT %(n)s FROM pg_catalog.pg_sleep(%(seconds)s) RETURNING id")
async def slow_write(n: int, seconds: float) -> int: ...


@query("INSERT INTO log (n) VALUES (%(n)s) RETURNING id -- a statement of its own")
async def logged_too(n: int) -> int: ...


@procedure
async def add_log(n: int, m: int = DEFAULT) -> int: ...


@query("SELECT pg_catalog.count(*) FROM log")
async def count() -> int: ...


class DeclaredError(Exception):
    pass


@query("SELECT 100 / (SELECT %(n)s::int FROM pg_catalog.pg_sleep(0.3))", errors={"22012": DeclaredError})
async def slow_share(n: int) -> int: ...


class OopsError(Exception):
    pass


@pytest.fixture
def log(pg_exec: Any) -> None:
    pg_exec("CREATE TABLE log (id serial PRIMARY KEY, n int NOT NULL)")
    pg_exec(  # the batch's first call sleeps, so that a call can be started while it runs
        "CREATE FUNCTION add_log(n int, m int DEFAULT 0) RETURNS int LANGUAGE sql AS"
        " 'INSERT INTO log (n) SELECT n + m FROM pg_catalog.pg_sleep(CASE WHEN n = 1 THEN 0.3 ELSE 0 END)"
        " RETURNING id'"
    )


async def warm(db: Database) -> None:
    """Three calls of each stub: their statements prepared, the connection's wire tested."""
    async with db.session():
        for _ in range(3):
            await echo(1)
            await pair(1)
            await share(1)
            await logged(0)
            await nap(0.0)


async def sleeping(admin: psycopg.Connection[Any], statement: str = "%pg_sleep%") -> None:
    """Wait, a turn of the event loop at a time, until a backend sleeps in a statement like *statement* (bounded:
    fails rather than hangs)."""
    seen = "SELECT 1 FROM pg_catalog.pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE %s"
    deadline = time.monotonic() + 30
    while not admin.execute(seen, [statement]).fetchone():
        if time.monotonic() > deadline:
            pytest.fail("no statement ever slept")
        await asyncio.sleep(0)


async def settled(call: Awaitable[object]) -> object:
    """What *call* returns, or the database error it raises."""
    try:
        return await call
    except psycopg.Error as err:
        return err


def outcome(got: object) -> object:
    """A call's value, or the class of its error."""
    return type(got) if isinstance(got, BaseException) else got


async def test_reads_gathered_in_a_session_cost_one_round_trip_and_its_commit(
    pg_dsn: str, proxy: Proxy, log: None
) -> None:
    """Five reads of two stubs gathered in a session on a warm pooled connection cost two round trips in all, the
    physical minimum (BEGIN and the five statements, then COMMIT), each getting its own value; calls made as tasks
    likewise."""
    async with Database(through(pg_dsn, proxy), max_size=1) as db:
        await warm(db)
        before = round_trips(proxy)
        async with db.session():
            got = await asyncio.gather(echo(1), pair(2), echo(3), pair(4), echo(5))
        assert list(got) == [1, (2, "n2"), 3, (4, "n4"), 5]
        assert round_trips(proxy) - before == 2
        before = round_trips(proxy)
        async with db.session():
            tasks = [asyncio.create_task(pair(n)) for n in range(10)]
            assert [await task for task in tasks] == [(n, f"n{n}") for n in range(10)]
        assert round_trips(proxy) - before == 2


async def test_a_call_of_the_sessions_own_task_goes_alone_until_another_task_calls(
    pg_dsn: str, proxy: Proxy, log: None
) -> None:
    """While only the task that opened the session has called in it, a call's statement goes alone (less work per
    call): a task it starts that calls meanwhile takes its turn after it, each getting its own value in the order
    they started. From then on the session's calls share round trips as gathered calls do."""
    async with Database(through(pg_dsn, proxy), max_size=1) as db:
        await warm(db)
        async with db.session():
            for _ in range(3):
                await slow_write(0, 0.0)
        before = round_trips(proxy)
        async with db.session():
            ids = [await logged(1)]
            other = asyncio.create_task(logged(2))  # runs once the opener's next call awaits its result
            ids.append(await slow_write(3, 0.2))
            ids.append(await other)
            ids += await asyncio.gather(logged(4), logged(5))
        # BEGIN with the first statement; the next two in turn; the gathered two together; COMMIT.
        assert round_trips(proxy) - before == 5
    assert ids == sorted(ids)


async def test_gathered_calls_that_fail_fail_as_they_would_one_after_the_other(
    pg_dsn: str, proxy: Proxy, log: None
) -> None:
    """A call that fails among gathered calls raises its own error and aborts the transaction for the calls after
    it, which raise what they would have raised one after the other; the calls before it have their values, and
    the session rolls back; the calls all in one round trip."""
    calls = [(echo, 1), (share, 0), (echo, 2), (share, 5)]
    async with Database(through(pg_dsn, proxy), max_size=1) as db:
        await warm(db)

        async def in_turn() -> list[object]:
            return [await settled(stub(n)) for stub, n in calls]

        async def gathered() -> list[object]:
            return await asyncio.gather(*(stub(n) for stub, n in calls), return_exceptions=True)

        outcomes: list[Any] = []
        for run in (in_turn, gathered):
            await warm(db)  # psycopg drops the prepared statements with a rollback
            before = round_trips(proxy)
            with pytest.raises(RolledBackError):
                async with db.session():
                    got = await run()
                    outcomes.append([outcome(value) for value in got])
            outcomes.append(round_trips(proxy) - before)
        assert db.counters.rolled_back == 2
    in_turn_outcomes, in_turn_trips, gathered_outcomes, gathered_trips = outcomes
    assert (
        gathered_outcomes
        == in_turn_outcomes
        == [
            1,
            psycopg.errors.DivisionByZero,
            psycopg.errors.InFailedSqlTransaction,
            psycopg.errors.InFailedSqlTransaction,
        ]
    )
    # The rollback costs two: psycopg deallocates its prepared statements after it.
    assert (in_turn_trips, gathered_trips) == (len(calls) + 2, 3)


async def test_gathered_writes_run_in_the_order_their_calls_started_and_commit_together(
    pg_dsn: str, proxy: Proxy, log: None, pg_exec: Any
) -> None:
    """Writes gathered in a session run in the order their calls started, as one after the other would, and are
    committed together at its end; in two round trips."""
    async with Database(through(pg_dsn, proxy), max_size=1) as db:
        await warm(db)
        before = round_trips(proxy)
        async with db.session():
            ids = await asyncio.gather(*(logged(n) for n in (10, 20, 30, 40)))
        assert round_trips(proxy) - before == 2
    assert ids == sorted(ids)
    assert pg_exec("SELECT n FROM log WHERE n > 0 ORDER BY id") == [(10,), (20,), (30,), (40,)]


@pytest.mark.parametrize("cancelled", ["the later call", "the first call"])
async def test_a_call_cancelled_while_calls_share_a_round_trip_stops_nothing_on_the_server(
    pg_dsn: str, admin: psycopg.Connection[Any], log: None, pg_exec: Any, cancelled: str
) -> None:
    """Of two calls sharing a round trip, one is cancelled while the server runs the first one's statement. The
    later one raises CancelledError at once, the first one when its result is in; no statement is stopped on the
    server (the stop could reach the other call's), so the other call gets its value and what both did stands; the
    session goes on and commits, its pool keeping its one connection."""
    async with Database(pg_dsn, max_size=1) as db:
        await warm(db)
        async with db.session():
            slow = asyncio.create_task(nap(0.3))
            await sleeping(admin)
            write = asyncio.create_task(logged(7))
            await asyncio.sleep(0)  # its statement sent
            if cancelled == "the later call":
                write.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await write
                assert not slow.done()
                await slow
            else:
                slow.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await slow
                assert await write > 0
            assert await echo(8) == 8
        stats = db.apool.get_stats()
    assert pg_exec("SELECT n FROM log WHERE n = 7") == [(7,)]
    assert (stats.get("connections_num"), stats.get("returns_bad", 0)) == (1, 0)


async def test_no_call_goes_into_the_savepoint_of_a_call_that_declares_errors(
    pg_dsn: str, admin: psycopg.Connection[Any], log: None, pg_exec: Any
) -> None:
    """A call that declares errors runs in a savepoint of its own: a call started while it runs waits for it to
    end instead of sending its statement into that savepoint, so that the declared error, undoing the first call
    alone, leaves the second's write in place, committed with the session."""
    async with Database(pg_dsn, max_size=1) as db:
        await warm(db)
        async with db.session():
            for _ in range(3):
                assert await slow_share(1) == 100
        async with db.session():
            failing = asyncio.create_task(slow_share(0))
            await sleeping(admin)
            written = await logged(11)
            with pytest.raises(DeclaredError):
                await failing
    assert pg_exec("SELECT id, n FROM log WHERE n = 11") == [(written, 11)]


async def test_gathered_calls_whose_connection_is_lost_all_raise_and_the_pool_replaces_it(
    pg_dsn: str, admin: psycopg.Connection[Any], log: None
) -> None:
    """The backend is ended while the first of three gathered calls runs: each of them raises psycopg's
    OperationalError, the session rolls back, and the pool's next session runs on a new connection."""
    async with Database(pg_dsn, max_size=1) as db:
        await warm(db)
        with pytest.raises(psycopg.OperationalError):
            async with db.session():
                calls = asyncio.gather(nap(5), echo(1), pair(2), return_exceptions=True)
                await sleeping(admin)
                admin.execute(
                    "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity"
                    " WHERE wait_event = 'PgSleep' AND query LIKE '%pg_sleep%'"
                )
                got = await calls
                assert [isinstance(error, psycopg.OperationalError) for error in got] == [True] * 3
                assert isinstance(got[0], psycopg.OperationalError)
                raise got[0]
        async with db.session():
            assert await echo(3) == 3


async def test_calls_started_while_a_batch_is_read_share_its_round_trip(pg_dsn: str, proxy: Proxy, log: None) -> None:
    """Calls started while a batch (``.many()``) of the session is read send their statements after it, in its
    round trip, and get their own values; the batch gets its own."""
    async with Database(through(pg_dsn, proxy), max_size=1) as db:
        await warm(db)
        async with db.session():
            assert await echo.many([(n,) for n in range(3)]) == [0, 1, 2]
        before = round_trips(proxy)
        async with db.session():
            got = await asyncio.gather(echo.many([(n,) for n in range(20)]), pair(7), echo(8))
        assert list(got) == [list(range(20)), (7, "n7"), 8]
        assert round_trips(proxy) - before == 2


async def test_calls_started_while_the_first_one_borrows_share_its_round_trip_once_it_sends(
    pg_dsn: str, proxy: Proxy, log: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gathered calls started while the session's first call borrows its connection (checked first: it sat in the
    pool longer than `owed.RECENT`) wait for that call to send its statement, then send theirs after it: three round
    trips in all, the check, the statements, COMMIT."""
    async with Database(through(pg_dsn, proxy), max_size=1) as db:
        await warm(db)
        monkeypatch.setattr(owed, "RECENT", 0.0)
        before = round_trips(proxy)
        async with db.session():
            got = await asyncio.gather(echo(1), pair(2), echo(3), pair(4), echo(5))
        assert list(got) == [1, (2, "n2"), 3, (4, "n4"), 5]
        assert round_trips(proxy) - before == 3


async def test_gathered_calls_cancelled_together_stop_the_statement_on_the_server(
    pg_dsn: str, log: None, pg_exec: Any
) -> None:
    """Gathered calls cut short together (``asyncio.wait_for``): with no call left awaiting a result, the statement
    running is stopped on the server, as a single call's is; the session's transaction is then aborted, and nothing
    is written."""
    async with Database(pg_dsn, max_size=1) as db:
        await warm(db)
        async with db.session():
            for n in range(3):
                await slow_write(-n, 0.0)
        pg_exec("TRUNCATE log")
        with pytest.raises(RolledBackError):
            async with db.session():
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.gather(slow_write(7, 3.0), echo(1), echo(2)), 0.3)
                with pytest.raises(psycopg.errors.InFailedSqlTransaction):
                    await echo(3)
    assert pg_exec("SELECT n FROM log") == []


async def test_a_call_that_must_take_its_turn_is_not_overtaken_by_calls_started_after_it(
    pg_dsn: str, admin: psycopg.Connection[Any], log: None, pg_exec: Any
) -> None:
    """While a statement runs, a write the connection has not prepared yet is started, which cannot share a round
    trip: it takes its turn. A write started after it then waits behind it, instead of going first in the slow
    statement's round trip."""
    async with Database(pg_dsn, max_size=1) as db:
        await warm(db)
        async with db.session():
            slow = asyncio.create_task(nap(0.3))
            await sleeping(admin)
            turn = asyncio.create_task(logged_too(2))
            await asyncio.sleep(0)  # queued for its turn
            await asyncio.gather(slow, turn, logged(3))
    assert pg_exec("SELECT n FROM log WHERE n > 0 ORDER BY id") == [(2,), (3,)]


async def test_no_call_goes_into_the_savepoint_of_another_tasks_transaction_block(
    pg_dsn: str, admin: psycopg.Connection[Any], log: None, pg_exec: Any
) -> None:
    """A task's `transaction()` block is rolled back to its savepoint; a call another task makes while a statement
    of that block runs is not sent into the savepoint with it, and is committed with the session."""
    async with Database(pg_dsn, max_size=1) as db:
        await warm(db)

        async def undone() -> None:
            async with transaction():
                await logged(1)
                await nap(0.3)
                raise OopsError

        async with db.session():
            block = asyncio.create_task(undone())
            await sleeping(admin)
            await logged(2)
            with pytest.raises(OopsError):
                await block
    assert pg_exec("SELECT n FROM log WHERE n > 0") == [(2,)]


async def test_no_call_goes_between_two_runs_of_a_batch(
    pg_dsn: str, admin: psycopg.Connection[Any], log: None, pg_exec: Any
) -> None:
    """A batch whose calls make two statements (an argument left to its default in some) runs them one after the
    other; a call started while its first run runs goes after its last, as one after the other."""
    async with Database(pg_dsn, max_size=1) as db:
        async with db.session():
            for _ in range(3):
                await add_log.many([(0,), (0,), (0, 0), (0, 0)])
                await count()
        pg_exec("TRUNCATE log")
        async with db.session():
            batch = asyncio.create_task(add_log.many([(1,), (2,), (3, 100), (4, 100)]))
            await sleeping(admin, "%add_log%")
            counted = await count()
            await batch
    assert counted == 4
