"""An async call's task cancelled while the wire runs it: the self-test before a connection's first call runs to its
end, a statement stopped half-way through a result read in chunks is stopped on the server too, and the session
and its connection stay sound. Task cancellation is asyncio's own: these tests have no sync twin."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from pgdecor import Database, query, session
from pgdecor._wire import guard as _wire_guard
from pgdecor._wire import wire_async
from tests.usercode.userdb import User, aadd_user, aget_user


async def test_a_call_cancelled_during_the_self_test_leaves_the_session_sound(
    users: str, admin: psycopg.Connection[Any], fresh_switch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The self-test (slowed here) runs to its end though its call is cancelled (a savepoint left half-way would
    break the session's transaction): the call is cancelled after it, and the session goes on and commits."""
    slow = "SELECT %s::int8 AS pgdecor_wire_probe, %s::text AS t FROM pg_sleep(0.3)"
    monkeypatch.setattr(wire_async, "_PROBE", slow)
    async with await psycopg.AsyncConnection.connect(users) as conn:
        async with session(conn):
            await aget_user(1)  # through a cursor: the next call is the wire's first
            task = asyncio.create_task(aget_user(1))
            await _seen(admin, "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.3)'")
            task.cancel()
            cancelled = False
            try:
                await task
            except asyncio.CancelledError:
                cancelled = True
            assert conn in _wire_guard._tested  # the self-test ran to its end, and passed
            await aadd_user(50, "after")
        async with session(conn):
            assert (cancelled, len(await aget_user.many([(50,), (1,)]))) == (True, 2)


async def test_an_async_call_cancelled_in_the_middle_of_a_chunked_result_leaves_the_connection_sound(
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

    async with await psycopg.AsyncConnection.connect(users) as conn:
        async with session(conn):
            for _ in range(3):
                assert len(await stalling(2000)) == 2000
        cancelled = False
        try:
            async with session(conn):
                await aadd_user(70, "cancelled")
                task = asyncio.create_task(stalling(3000))
                await _seen(admin, "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
                while wire_async.CHUNKED_ROWS and chunked_reads[1:] != [2]:  # noqa: ASYNC110 - as the rows come
                    await asyncio.sleep(0)
                task.cancel()
                await task
        except asyncio.CancelledError:
            cancelled = True
        async with session(conn):
            assert await aget_user(70) is None
            assert (cancelled, [u.id for u in await stalling(3)]) == (True, [1, 2, 3])
    assert chunked_reads == ([2, 2] if wire_async.CHUNKED_ROWS else [])


@query("SELECT pg_catalog.pg_backend_pid() FROM pg_catalog.pg_sleep(%(seconds)s)")
async def backend_after(seconds: float) -> int: ...


@pytest.mark.parametrize("many", [False, True])
async def test_a_call_cancelled_while_the_pipeline_that_begins_its_transaction_is_read_keeps_the_connection(
    pg_dsn: str, admin: psycopg.Connection[Any], many: bool
) -> None:
    """A session's first call, sent in one pipeline with its BEGIN (or a batch with it), cancelled while the server
    runs it: the task raises `CancelledError` (not an error of the pipeline left half-read), the statement is
    stopped on the server, and the pool keeps its one connection, which serves the next session."""
    async with Database(pg_dsn, max_size=1) as db:
        async with db.session():  # the statements prepared, the connection's wire tested
            for _ in range(2):
                pid = await backend_after(0)
                assert await backend_after.many([(0,), (0,)]) == [pid, pid]

        async def first_call() -> None:
            async with db.session():
                await (backend_after.many([(0,), (30,)]) if many else backend_after(30))

        task = asyncio.create_task(first_call())
        await _seen(admin, "SELECT 1 FROM pg_catalog.pg_stat_activity WHERE pid = %s AND state = 'active'", pid)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db.session():
            assert await backend_after(0) == pid
        assert (db.counters.rolled_back, db.counters.committed) == (1, 2)


async def test_an_async_batch_cancelled_while_the_server_works_leaves_the_connection_sound(
    users: str, admin: psycopg.Connection[Any], wire_batches: list[int]
) -> None:
    """A batch pipelined by the wire whose third execution stalls; the call's task is cancelled while the batch is
    read: the statement is stopped on the server, the pipeline read to its Sync and left, the session rolls back,
    and the connection serves the next session, batches included."""

    @query("SELECT %(n)s::int AS n FROM pg_sleep(CASE WHEN %(n)s::int = 3 THEN 30 ELSE 0 END)")
    async def stalling(n: int) -> int: ...

    async with await psycopg.AsyncConnection.connect(users) as conn:
        async with session(conn):
            for _ in range(2):
                assert await stalling.many([(1,), (2,)]) == [1, 2]
        cancelled = False
        try:
            async with session(conn):
                await aadd_user(71, "cancelled")
                task = asyncio.create_task(stalling.many([(1,), (2,), (3,), (4,)]))
                await _seen(admin, "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
                task.cancel()
                await task
        except asyncio.CancelledError:
            cancelled = True
        async with session(conn):
            assert await aget_user(71) is None
            again = [await stalling.many([(5,), (6,)]) for _ in range(2)]
    assert (cancelled, again) == (True, [[5, 6]] * 2)
    assert wire_batches == [2, 0, 2]  # psycopg prepares the statement again after the rollback, then the wire


async def _seen(admin: psycopg.Connection[Any], query: str, *params: Any) -> None:
    """Wait, a turn of the event loop at a time, until *query* finds a row on the server."""
    while not admin.execute(query, params or None).fetchone():  # noqa: ASYNC110 - the server is what is waited for
        await asyncio.sleep(0)
