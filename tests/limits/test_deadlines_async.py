"""Deadlines of async stubs and sessions: a stub's ``timeout=`` and a session's ``deadline=`` hold async calls as
they hold sync ones. The tests of tests/limits/test_deadlines.py that had no async twin, written as
tools/async_to_sync.py reads an async source (their sync twins are those of test_deadlines.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgdecor import Database, DeadlineError, UnreachableError, procedure, query, session
from pgdecor.testing import TemporaryServer
from tests.limits.test_deadlines import SCHEMA, SECRET, Exec, _ms, _StallingProxy


@procedure(timeout=0.3)
async def nap(seconds: float) -> int: ...


@procedure("nap")
async def nap_freely(seconds: float) -> int: ...


@procedure(autocommit=True, timeout=0.3)
async def note_then_nap(id: int, seconds: float) -> None: ...


@query("SELECT pg_catalog.current_setting('statement_timeout')")
async def statement_timeout() -> str: ...


@query("SELECT pg_catalog.pg_backend_pid()")
async def backend() -> int: ...


@query("SELECT 1", timeout=0.2)
async def one_in_time() -> int: ...


@pytest.fixture
def dsn(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(SCHEMA)
    return pg_dsn


@pytest.fixture(scope="module")
def own() -> Iterator[TemporaryServer]:
    """A server of this module's own, whose connections the tests hold back."""
    with TemporaryServer() as started:
        with psycopg.connect(started.dsn, autocommit=True) as conn:
            conn.execute(SCHEMA)
        yield started


async def test_statements_after_a_timed_call_are_not_limited(dsn: str) -> None:
    """The statement timeout a call is given lasts for its statement only: later statements of the transaction
    have the transaction's own setting again, in a transaction and in autocommit."""
    async with session(dsn):
        assert await nap(0) == 1
        assert await statement_timeout() == "0"
        assert await nap_freely(0.4) == 1  # longer than nap's timeout
    async with session(make_conninfo(dsn, options=f"{conninfo_to_dict(dsn)['options']} -c statement_timeout=7s")):
        assert await nap(0) == 1
        assert await statement_timeout() == "7s"
    async with session(dsn, autocommit=True):
        assert await nap(0) == 1
        assert await statement_timeout() == "0"


async def test_an_autocommit_procedure_is_stopped_at_its_timeout(dsn: str, pg_exec: Exec) -> None:
    """A procedure that commits itself is held to its timeout past its COMMIT; what it committed stays, and the
    session's next statement is not limited."""
    with pytest.raises(DeadlineError):
        async with session(dsn, autocommit=True):
            await note_then_nap(1, 5)
    async with session(dsn, autocommit=True):
        assert await statement_timeout() == "0"
    assert pg_exec("SELECT * FROM notes") == [(1,)]


async def test_a_session_deadline_is_shared_by_its_statements(dsn: str, admin: psycopg.Connection[Any]) -> None:
    """Each call of a session with a deadline gets what is left of it; once it has passed, a call raises at once
    without sending anything."""
    activity = "SELECT query FROM pg_catalog.pg_stat_activity WHERE pid = %s"
    with pytest.raises(DeadlineError) as caught:
        async with session(dsn, deadline=1.5) as s:
            assert await nap_freely(0.3) == 1
            left = _ms(await statement_timeout())  # the statement timeout this very call was given
            assert 0 < left <= 1500 - 300
            pid = await backend()
            assert s._state.deadline is not None
            admin.execute("SELECT pg_catalog.pg_sleep(%s)", [s._state.deadline[0] - time.monotonic()])
            last = admin.execute(activity, [pid]).fetchall()
            try:
                await nap_freely(0)
            finally:
                after = admin.execute(activity, [pid]).fetchall()
    assert after == last
    assert "session's deadline of 1.5 s" in str(caught.value)
    assert "nothing was sent" in str(caught.value)
    assert caught.value.limit == "deadline"


async def test_a_deadline_passed_before_the_first_call_borrows_nothing(
    dsn: str, admin: psycopg.Connection[Any]
) -> None:
    """A session whose deadline passed before its first call raises there without borrowing a connection."""
    async with Database(dsn) as db:
        with pytest.raises(DeadlineError):
            async with db.session(deadline=0.1):
                admin.execute("SELECT pg_catalog.pg_sleep(0.15)")
                await nap_freely(0)
        assert db.counters.borrowed == 0


async def test_opening_a_database_with_a_wrong_password_fails_at_once(own: TemporaryServer) -> None:
    """A server that refuses the login is said at once too, with its reason."""
    conninfo = make_conninfo(own.dsn, user="nobody_here", password=SECRET)
    with pytest.raises(UnreachableError, match="nobody_here") as caught:
        async with Database(conninfo):
            pass
    assert SECRET not in str(caught.value)


@pytest.mark.slow
async def test_a_call_answered_after_its_cancel_was_sent_raises_and_its_connection_is_closed(
    own: TemporaryServer,
) -> None:
    """A call whose answer reaches the client only after the watchdog sent its cancel request raises
    `DeadlineError`, and its connection is closed, never given back: the cancel could stop another statement."""
    proxy = _StallingProxy(own.dsn)
    cancels = psycopg.capabilities.has_cancel_safe()
    try:
        async with Database(proxy.dsn, max_size=1) as db:
            with pytest.raises(DeadlineError) as caught:
                async with db.session() as sess:
                    pid = await backend()
                    conn = await sess.aconnection()
                    proxy.hold()
                    await one_in_time()
            assert proxy.cancel_seen.is_set() is cancels
            assert conn.closed
            if cancels:
                assert "after it had been asked to cancel" in str(caught.value)
            else:
                assert "the connection was closed" in str(caught.value)
            async with db.session():
                assert await backend() != pid
    finally:
        proxy.close()
