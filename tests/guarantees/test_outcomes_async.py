"""A session commits only what succeeded: a caught database error of any kind, a lost connection, a failed
savepoint all end it with a rollback and `RolledBackError`; the counters say "committed" only when COMMIT did.

These are the async stubs' tests; tests/guarantees/test_outcomes.py, the sync stubs' same tests, is generated from
them by tools/async_to_sync.py. Tasks sharing an async session are in tests/guarantees/test_tasks.py."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from pgdecor import Database, RolledBackError, query, session, transaction
from tests.usercode.userdb import aadd_user, acount_users, aget_user


@query("SELECT pg_terminate_backend(pg_backend_pid())")
async def terminate_myself() -> bool: ...


def kill(admin: psycopg.Connection[Any], pid: int) -> None:
    admin.execute("SELECT pg_terminate_backend(%s)", [pid])


async def test_caught_lost_connection_rolls_back_loudly_and_is_not_counted_committed(users: str) -> None:
    """The handler catches the error of a terminated backend and goes on: nothing was committed, and the session
    says so instead of pretending."""
    async with Database(users, max_size=1) as db:
        with pytest.raises(RolledBackError, match="connection was lost"):
            async with db.session():
                await aadd_user(40, "lost")
                with contextlib.suppress(psycopg.OperationalError):
                    await terminate_myself()
        assert db.counters.as_dict() == {
            "borrowed": 1,
            "released": 1,
            "committed": 0,
            "rolled_back": 1,
            "commit_unknown": 0,
            "leaked": 0,
        }
        async with db.session():
            assert await aget_user(40) is None
            assert await acount_users() == 3  # the pool replaced the dead connection


async def test_failed_savepoint_on_a_lost_connection_rolls_back_loudly(
    users: str, admin: psycopg.Connection[Any]
) -> None:
    """A `transaction()` that cannot even begin (its connection is gone) raises before its block runs; that error
    caught, the session still ends rolled back, loudly."""
    with pytest.raises(RolledBackError, match="connection was lost"):
        async with session(users) as sess:
            await aadd_user(42, "saved")
            kill(admin, (await sess.aconnection()).info.backend_pid)
            with pytest.raises(psycopg.OperationalError):
                async with transaction():
                    pytest.fail("the block of a savepoint that could not begin ran")
    async with session(users):
        assert await aget_user(42) is None


async def test_error_inside_a_savepoint_caught_still_commits_the_rest(users: str) -> None:
    """The documented way to let one part fail: only the savepoint is undone, the session commits."""
    async with session(users):
        await aadd_user(44, "kept")
        with pytest.raises(psycopg.errors.UniqueViolation):
            async with transaction():
                await aadd_user(1, "dup")
    async with session(users):
        assert await aget_user(44) is not None


async def test_failed_commit_raises_and_counts_rolled_back(users: str, pg_exec: Callable[..., Any]) -> None:
    """A COMMIT the server refuses (a deferred constraint) raises its error, and is counted rolled back."""
    pg_exec("CREATE TABLE d (k int, CONSTRAINT once UNIQUE (k) DEFERRABLE INITIALLY DEFERRED)")

    @query("INSERT INTO d VALUES (1), (1)")
    async def twice() -> None: ...

    async with Database(users, max_size=1) as db:
        with pytest.raises(psycopg.errors.UniqueViolation):
            async with db.session():
                await twice()
        assert (db.counters.committed, db.counters.rolled_back) == (0, 1)
