"""A `Database`'s sessions in asyncio tasks: the leak guard reaps the session of a task that finished (a thread's
are in tests/service/test_threads.py)."""

from __future__ import annotations

import asyncio

import pytest

from pgdecor import Database, session
from tests.usercode.userdb import aget_user


def test_session_of_a_finished_task_is_reaped(users: str) -> None:
    """A session its task entered and never exited, the task finished, is rolled back (with a warning) and its
    connection given back to the pool."""

    async def main() -> None:
        async with Database(users, min_size=0, max_size=1) as db:

            async def leak() -> None:
                await session(db).__aenter__()  # never exited
                await aget_user(1)

            await asyncio.create_task(leak())
            with pytest.warns(ResourceWarning, match="its task ended"):
                assert await db.areap() == 1
            assert _pool_idle_async(db) == 1

    def _pool_idle_async(db: Database) -> int:
        return int(db.apool.get_stats()["pool_available"])

    asyncio.run(main())
