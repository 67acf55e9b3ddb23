"""An async session commits only what succeeded: a failed savepoint ends it with a rollback and `RolledBackError`,
a caught error inside a savepoint undoes that part alone, and the counters say "committed" only when COMMIT did.
The tests of tests/guarantees/test_outcomes.py that had no async twin, written as tools/async_to_sync.py reads an
async source (their sync twins are those of test_outcomes.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from pgdecor import Database, RolledBackError, query, session, transaction
from tests.guarantees.test_outcomes import kill
from tests.usercode.userdb import aadd_user, aget_user


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
