"""A COPY whose task is cancelled, in or out, mid-way: nothing of it is stored, the server stops it, and its
connection serves the next session. Cancelling a task is async by nature: these tests have no sync twin (the other
tests of COPY stubs are tests/run/test_copy_async.py's, and of its generated twin)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg import pq

from pgdecor import copy_out, session
from tests.fix_db import Exec
from tests.run.test_copy_async import SCHEMA, SLOW_VIEW, _people, count_people
from tests.usercode.copy_stubs_async import Person, export_people, load_people


@pytest.fixture
def dsn(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(SCHEMA)
    return pg_dsn


async def _until(admin: psycopg.Connection[Any], sql: str, pid: int) -> None:
    """Until *sql* finds backend *pid* in pg_stat_activity (bounded: fails rather than hangs)."""
    for _ in range(4000):
        if admin.execute(sql, (pid,)).fetchone():
            return
        await asyncio.sleep(0.005)
    pytest.fail("the backend never got there")


async def test_a_cancelled_copy_in_rolls_back_and_leaves_the_connection_usable(
    dsn: str, admin: psycopg.Connection[Any]
) -> None:
    """The task of a COPY whose rows stop coming mid-way (1,500 sent) is cancelled: nothing is stored, the
    session ends rolled back, and its connection serves the next session."""
    stalled = asyncio.Event()
    never = asyncio.Event()

    async def rows() -> AsyncIterator[Person]:
        for person in _people(3000, -1):
            if person.id == 1500:
                stalled.set()
                await never.wait()
            yield person

    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        pid = conn.info.backend_pid

        async def work() -> None:
            async with session(conn):
                await load_people(rows())

        task = asyncio.create_task(work())
        await stalled.wait()
        await _until(admin, "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND query LIKE 'COPY%%'", pid)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        async with session(conn):
            assert await count_people() == 0
            assert await load_people(_people(5, -1)) == 5
        async with session(conn):
            assert await count_people() == 5


@copy_out("slow")
def export_slow() -> AsyncIterator[Person]: ...


async def test_a_cancelled_copy_out_stops_on_the_server_and_leaves_the_connection_usable(
    dsn: str, pg_exec: Exec, admin: psycopg.Connection[Any]
) -> None:
    """The task reading a COPY out is cancelled while the server is stuck mid-way: the server stops the COPY, the
    session rolls back what it wrote, and its connection serves the next session."""
    pg_exec(SLOW_VIEW)
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        pid = conn.info.backend_pid
        seen: list[int] = []

        async def work() -> None:
            async with session(conn):
                await load_people(_people(3, -1))
                seen.extend([person.id async for person in export_slow()])

        task = asyncio.create_task(work())
        await _until(admin, "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'PgSleep'", pid)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        state = admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        assert state == ("idle",)
        async with session(conn):
            assert (await count_people(), [p.id async for p in export_people()]) == (0, [])
