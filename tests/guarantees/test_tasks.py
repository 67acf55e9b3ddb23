"""Tasks inside an async session share it: the calls of its child tasks (``asyncio.gather``, a ``TaskGroup``) take
turns on its one connection, commit with it, and are never taken for a leak."""

from __future__ import annotations

import asyncio
import contextvars
import sys

import pytest

from pgdecor import Database, query, session
from tests.usercode.userdb import aadd_user, acount_users, aget_user


@query("SELECT %(i)s FROM pg_sleep(0.01)")
async def apause(i: int) -> int: ...


async def test_child_tasks_share_the_session_one_call_at_a_time(users: str) -> None:
    """gather inside ``async with session``: the first call (and borrow) happens in a child task, the calls take
    turns on the one connection, and another session's borrow does not take the session for a leak."""
    async with Database(users, max_size=2) as db:
        async with db.session():
            results = await asyncio.gather(*(apause(i) for i in range(8)), aadd_user(45, "gathered"))
            # A request of its own (a task outside this session's context): its borrow has the leak guard
            # look at this session, whose first call was made by a task that has ended.
            other = contextvars.Context().run(asyncio.ensure_future, _other_session(db))
            assert await other == 3  # it cannot see the uncommitted user
            assert results[:8] == list(range(8))
            assert await aget_user(45) is not None
        assert db.counters.leaked == 0
        assert db.counters.committed == 2
        async with db.session():
            assert await aget_user(45) is not None


async def _other_session(db: Database) -> int:
    async with session(db):
        return await acount_users()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is new in Python 3.11")
async def test_task_group_tasks_share_the_session(users: str) -> None:
    """The tasks of a ``TaskGroup`` opened inside ``async with session`` share it, and it commits once."""
    async with Database(users, max_size=1) as db:
        async with db.session(), asyncio.TaskGroup() as tg:  # type: ignore[attr-defined, unused-ignore]
            tasks = [tg.create_task(apause(i)) for i in range(5)]
            tg.create_task(aadd_user(46, "grouped"))
        assert [t.result() for t in tasks] == list(range(5))
        assert db.counters.as_dict() == {"borrowed": 1, "released": 1, "committed": 1, "rolled_back": 0, "commit_unknown": 0,
                                         "leaked": 0}  # fmt: skip
