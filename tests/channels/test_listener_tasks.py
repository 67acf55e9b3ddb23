"""Async listeners in tasks: one cancelled while it waits, several sharing a listener. Tasks are async by nature,
so these tests have no sync twin (the other tests of notifications are tests/channels/test_notifications_async.py's,
and of its generated twin)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg

from pgdecor import Missed, session
from tests.channels.test_notifications_async import backend_exists, channel, listener, sender, wait_until


async def test_a_cancelled_listener_closes_its_connection(pg_server_dsn: str, admin: psycopg.Connection[Any]) -> None:
    """An async listener's task cancelled while it waits leaves its block, closing its connection."""
    events = listener(channel(), int)(pg_server_dsn)
    got: list[Any] = []

    async def consume() -> None:
        async with events:
            async for item in events:
                got.append(item)  # noqa: PERF401 - each item as it comes, watched by the test's task

    task = asyncio.create_task(consume())
    while events.backend_pid is None or not got:  # noqa: ASYNC110 - state another task sets, not an event
        await asyncio.sleep(0.01)
    pid: int = events.backend_pid
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert events.backend_pid is None
    wait_until(lambda: not backend_exists(admin, pid), "its backend has ended")


async def test_tasks_sharing_a_listener_each_take_other_notifications(pg_server_dsn: str) -> None:
    """Several tasks iterating one listener take turns: every notification goes to exactly one of them."""
    name = channel()
    send = sender(name, int)

    async with listener(name, int)(pg_server_dsn) as events:
        assert await anext(events) == Missed(name, "started")
        async with session(pg_server_dsn):
            for i in range(100):
                await send(i)

        async def take(n: int) -> list[Any]:
            return [await anext(events) for _ in range(n)]

        taken = list(await asyncio.gather(take(50), take(30), take(20)))
    assert sorted(x for part in taken for x in part) == list(range(100))
    assert all(part == sorted(part) for part in taken)
