"""Async sessions borrow a connection lazily and always give it back, committed or rolled back: the tests of
tests/session/test_session.py that had no async twin, with async stubs under ``async with session(...)`` (written
as tools/async_to_sync.py reads an async source: their sync twins are those of test_session.py)."""

import contextlib
import sys
from typing import Any

import psycopg
import pytest
from psycopg import pq
from psycopg_pool import AsyncConnectionPool

from pgdecor import NoSessionError, RolledBackError, Session, session, transaction
from tests.session.test_session import open_backends
from tests.usercode.userdb import User, aadd_user, acount_users, aget_user, aset_email


async def test_call_outside_a_session_raises_no_session_error() -> None:
    """A call with no session says how to open one."""
    with pytest.raises(
        NoSessionError, match=r"tests\.usercode\.userdb\.aget_user\(\) was called outside any session; call it inside"
    ):
        await aget_user(1)


async def test_session_borrows_lazily() -> None:
    """A session that makes no call never connects (so an unreachable server is never a problem)."""
    async with session("host=/nonexistent port=1 connect_timeout=1") as s:
        pass
    assert not s.borrowed


async def test_normal_exit_commits(users: str) -> None:
    """Work done in a session is committed when the block ends."""
    async with session(users):
        await aadd_user(4, "dee")
    async with session(users):
        assert await acount_users() == 4


async def test_exception_rolls_back_and_propagates(users: str) -> None:
    """An exception in the block rolls the work back and still reaches the caller."""
    with pytest.raises(KeyError):
        async with session(users):
            await aadd_user(4, "dee")
            raise KeyError
    async with session(users):
        assert await acount_users() == 3


async def test_conninfo_session_closes_its_connection(users: str) -> None:
    """A session on a conninfo string closes the connection it opened."""
    async with session(users) as s:
        await acount_users()
        conn = await s.aconnection()
        assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
    assert conn.closed


async def test_pool_session_returns_the_connection_clean(users: str) -> None:
    """After an error, the pooled connection goes back idle: no aborted transaction reaches the next user."""
    async with AsyncConnectionPool(users, min_size=1, max_size=1, open=False) as pool:
        with pytest.raises(psycopg.errors.UniqueViolation):
            async with session(pool) as s:
                await aadd_user(1, "dup")
        conn = await pool.getconn()
        try:
            assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        finally:
            await pool.putconn(conn)
        async with session(pool):
            assert await acount_users() == 3
        assert not s.borrowed
        assert pool.get_stats()["pool_available"] == 1


async def test_no_backend_is_left_idle_in_transaction(users: str, admin: Any) -> None:
    """After sessions end, whatever their outcome, no backend is idle in transaction."""
    async with AsyncConnectionPool(users, min_size=1, max_size=1, open=False) as pool:
        async with session(pool):
            await aget_user(1)
            assert [s for s, _ in open_backends(admin, users)] == ["idle in transaction"]
        with pytest.raises(ZeroDivisionError):
            async with session(pool):
                await aget_user(1)
                _ = 1 / 0
        async with session(users):
            await aget_user(1)
        assert [s for s, _ in open_backends(admin, users) if s != "idle"] == []


async def test_user_connection_is_used_but_not_closed(users: str) -> None:
    """A psycopg connection given as source is committed but stays open and belongs to the caller."""
    async with await psycopg.AsyncConnection.connect(users) as conn:
        async with session(conn):
            await aadd_user(4, "dee")
        assert not conn.closed
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        assert await (await conn.execute("SELECT count(*) FROM users")).fetchone() == (4,)


async def test_user_connection_in_a_transaction_gets_a_savepoint(users: str) -> None:
    """Inside the caller's own transaction, a failing session undoes only its own work."""
    async with await psycopg.AsyncConnection.connect(users) as conn:
        await conn.execute("INSERT INTO users VALUES (5, 'eve', NULL)")
        with pytest.raises(KeyError):
            async with session(conn):
                await aadd_user(4, "dee")
                raise KeyError
        ids = await (await conn.execute("SELECT array_agg(id ORDER BY id) FROM users")).fetchone()
        assert ids == ([1, 2, 3, 5],)
        await conn.rollback()


async def test_nested_session_on_the_same_source_joins_the_outer_one(users: str) -> None:
    """An inner session on the same source shares the connection and the transaction."""
    async with session(users) as outer:
        await aadd_user(4, "dee")
        async with session(users) as inner:
            assert await acount_users() == 4
            assert await inner.aconnection() is await outer.aconnection()
        assert (await outer.aconnection()).info.transaction_status == pq.TransactionStatus.INTRANS
    with pytest.raises(KeyError):
        async with session(users):
            async with session(users):
                await aadd_user(5, "eve")
            raise KeyError
    async with session(users):
        assert await acount_users() == 4


async def test_nested_session_on_another_source_is_independent(users: str) -> None:
    """An inner session on another source has its own transaction, committed at its own exit."""
    async with AsyncConnectionPool(users, min_size=1, max_size=1, open=False) as pool:
        with pytest.raises(KeyError):
            async with session(users):
                await aadd_user(4, "dee")
                async with session(pool):
                    await aadd_user(5, "eve")
                    assert await acount_users() == 4  # the outer insert is not visible: another transaction
                raise KeyError
    async with session(users):
        assert await aget_user(4) is None
        assert await aget_user(5) == User(5, "eve", None)


async def test_transaction_is_a_savepoint_rolled_back_alone(users: str) -> None:
    """A failing `transaction()` block undoes only its own work."""
    async with session(users):
        await aadd_user(4, "dee")
        with pytest.raises(psycopg.errors.UniqueViolation):
            async with transaction():
                await aadd_user(5, "eve")
                await aadd_user(1, "dup")
        async with transaction():
            await aset_email(4, "dee@example.org")
    async with session(users):
        assert await aget_user(4) == User(4, "dee", "dee@example.org")
        assert await aget_user(5) is None


async def test_transaction_outside_a_session_raises(users: str) -> None:
    """`transaction()` needs a session."""
    with pytest.raises(NoSessionError, match=r"transaction\(\) was called outside any session"):
        async with transaction():
            pass


async def test_caught_database_error_makes_the_exit_roll_back_loudly(users: str) -> None:
    """If code swallows a database error, the session does not pretend to commit."""
    with pytest.raises(RolledBackError, match=r"wrap the call that may fail in `async with transaction\(\):`"):
        async with session(users):
            await aadd_user(4, "dee")
            with contextlib.suppress(psycopg.errors.UniqueViolation):
                await aadd_user(1, "dup")
    async with session(users):
        assert await aget_user(4) is None


async def test_a_session_cannot_be_entered_twice(users: str) -> None:
    """A Session is a one-shot scope."""
    s = session(users)
    async with s:
        pass
    with pytest.raises(NoSessionError, match="already entered"):
        async with s:
            pass


async def test_session_repr_says_its_state(users: str) -> None:
    """The repr names the source kind, where it was opened and its state, never the password-bearing conninfo."""
    s = session(users)
    line = sys._getframe().f_lineno - 1
    assert repr(s) == f"<pgdecor session on a conninfo string opened at {__file__}:{line} (not entered)>"
    async with s:
        assert "(active)" in repr(s)
    assert "(ended)" in repr(s)
    assert isinstance(s, Session)


async def test_a_server_that_is_not_there_is_named_with_what_to_check() -> None:
    """psycopg's error stays (its class and message), with a note naming the server tried and the session's source."""
    with pytest.raises(psycopg.OperationalError) as info:
        async with session("host=/nonexistent port=1 connect_timeout=1"):
            await acount_users()
    (note,) = [n for n in getattr(info.value, "__notes__", []) if n.startswith("pgdecor:")]
    assert "a session on a conninfo string could not get a connection to /nonexistent:1/" in note
    assert "check that the server runs there" in note


async def test_a_session_used_before_it_is_entered_says_so(users: str) -> None:
    """Borrowing outside the ``with`` block would leave a connection nobody ends: refused, and nothing borrowed."""
    s = session(users)
    with pytest.raises(NoSessionError, match=r"is not entered; use it as `with session\(...\):` \(or `async with`\)"):
        await s.aconnection()
    assert not s.borrowed
