# Generated from tests/guarantees/test_outcomes_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.guarantees.test_outcomes_async`, generated from it: see there."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from pgdecor import Database, RolledBackError, query, session, transaction
from tests.usercode.userdb import add_user, count_users, get_user


@query("SELECT pg_terminate_backend(pg_backend_pid())")
def terminate_myself() -> bool: ...


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
    """A COMMIT the server refuses (a deferred constraint) raises its error, and is counted rolled back."""
    pg_exec("CREATE TABLE d (k int, CONSTRAINT once UNIQUE (k) DEFERRABLE INITIALLY DEFERRED)")

    @query("INSERT INTO d VALUES (1), (1)")
    def twice() -> None: ...

    with Database(users, max_size=1) as db:
        with pytest.raises(psycopg.errors.UniqueViolation), db.session():
            twice()
        assert (db.counters.committed, db.counters.rolled_back) == (0, 1)
