"""A session commits only what succeeded: a caught database error of any kind, a lost connection, a failed
savepoint all end it with a rollback and `RolledBackError`; the counters say "committed" only when COMMIT did."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from pgdecor import Database, RolledBackError, query, session, transaction
from tests.usercode.userdb import aadd_user, acount_users, add_user, aget_user, count_users, get_user


@query("SELECT pg_terminate_backend(pg_backend_pid())")
def terminate_myself() -> bool: ...


@query("SELECT pg_terminate_backend(pg_backend_pid())")
async def aterminate_myself() -> bool: ...


def kill(admin: psycopg.Connection[Any], pid: int) -> None:
    admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_caught_lost_connection_rolls_back_loudly_and_is_not_counted_committed(users: str) -> None:
    """The handler catches the error of a terminated backend and goes on: nothing was committed, and the session
    says so instead of pretending."""
    with Database(users, max_size=1) as db:
        with pytest.raises(RolledBackError, match="connection was lost"), db.session():
            add_user(40, "lost")
            with contextlib.suppress(psycopg.OperationalError):
                terminate_myself()
        assert db.counters.as_dict() == {
            "borrowed": 1,
            "released": 1,
            "committed": 0,
            "rolled_back": 1,
            "commit_unknown": 0,
            "leaked": 0,
        }
        with db.session():
            assert get_user(40) is None
            assert count_users() == 3  # the pool replaced the dead connection


def test_async_caught_lost_connection_rolls_back_loudly(users: str) -> None:
    async def main() -> None:
        async with Database(users, max_size=1) as db:
            with pytest.raises(RolledBackError, match="connection was lost"):
                async with db.session():
                    await aadd_user(41, "lost")
                    with contextlib.suppress(psycopg.OperationalError):
                        await aterminate_myself()
            assert db.counters.committed == 0
            assert db.counters.rolled_back == 1
            async with db.session():
                assert await aget_user(41) is None

    asyncio.run(main())


def test_failed_savepoint_on_a_lost_connection_rolls_back_loudly(users: str, admin: psycopg.Connection[Any]) -> None:
    """A `transaction()` that cannot even begin (its connection is gone) raises before its block runs; that error
    caught, the session still ends rolled back, loudly."""
    with pytest.raises(RolledBackError, match="connection was lost"), session(users) as sess:
        add_user(42, "saved")
        kill(admin, sess.connection().info.backend_pid)
        with pytest.raises(psycopg.OperationalError), transaction():
            pytest.fail("the block of a savepoint that could not begin ran")
    with session(users):
        assert get_user(42) is None


def test_error_inside_a_savepoint_caught_still_commits_the_rest(users: str) -> None:
    """The documented way to let one part fail: only the savepoint is undone, the session commits."""
    with session(users):
        add_user(44, "kept")
        with pytest.raises(psycopg.errors.UniqueViolation), transaction():
            add_user(1, "dup")
    with session(users):
        assert get_user(44) is not None


def test_failed_commit_raises_and_counts_rolled_back(users: str, pg_exec: Callable[..., Any]) -> None:
    pg_exec("CREATE TABLE d (k int, CONSTRAINT once UNIQUE (k) DEFERRABLE INITIALLY DEFERRED)")

    @query("INSERT INTO d VALUES (1), (1)")
    def twice() -> None: ...

    with Database(users, max_size=1) as db:
        with pytest.raises(psycopg.errors.UniqueViolation), db.session():
            twice()
        assert (db.counters.committed, db.counters.rolled_back) == (0, 1)


# -- tasks inside a session ---------------------------------------------------------------------------------


@query("SELECT %(i)s FROM pg_sleep(0.01)")
async def apause(i: int) -> int: ...


def test_child_tasks_share_the_session_one_call_at_a_time(users: str) -> None:
    """gather inside ``async with session``: the first call (and borrow) happens in a child task, the calls take
    turns on the one connection, and another session's borrow does not take the session for a leak."""

    async def main() -> None:
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

    asyncio.run(main())


async def _other_session(db: Database) -> int:
    async with session(db):
        return await acount_users()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is new in Python 3.11")
def test_task_group_tasks_share_the_session(users: str) -> None:
    async def main() -> None:
        async with Database(users, max_size=1) as db:
            async with db.session(), asyncio.TaskGroup() as tg:  # type: ignore[attr-defined, unused-ignore]
                tasks = [tg.create_task(apause(i)) for i in range(5)]
                tg.create_task(aadd_user(46, "grouped"))
            assert [t.result() for t in tasks] == list(range(5))
            assert db.counters.as_dict() == {"borrowed": 1, "released": 1, "committed": 1, "rolled_back": 0, "commit_unknown": 0,
                                             "leaked": 0}  # fmt: skip

    asyncio.run(main())
