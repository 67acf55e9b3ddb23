"""Deadlines: a stub's ``timeout=`` and a session's ``deadline=`` stop its calls (the server's statement timeout,
set for that statement alone; or, when the server does not answer, the client cancelling and then ending the
connection) with `DeadlineError`, and a Database checks its options and fails at once on a server it cannot reach.

These are the async stubs' tests; tests/limits/test_deadlines.py, the sync stubs' same tests, is generated from them
by tools/async_to_sync.py."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgdecor import (
    ArgumentError,
    Database,
    DeadlineError,
    SignatureError,
    UnreachableError,
    procedure,
    query,
    session,
)
from pgdecor.testing import TemporaryServer
from tests.fix_db import Exec
from tests.utils.servers import free_port
from tests.utils.stalling_proxy import StallingProxy

#: Seconds a call whose server does not answer may take past its limit: the watchdog's cancel, then its end of
#: the connection (2 x `_limits.deadlines.GRACE`), and some slack for a loaded machine.
CLIENT_BOUND = 2.0 + 1.5
SECRET = "deadline-s3cret"

#: The kind of the calls, in the figures measured.
if True:  # ASYNC
    KIND = "async"
else:
    KIND = "sync"

SCHEMA = """
CREATE TABLE notes (id int PRIMARY KEY);
CREATE FUNCTION nap(seconds float8) RETURNS int LANGUAGE sql AS $$ SELECT 1 FROM pg_catalog.pg_sleep(seconds) $$;
CREATE PROCEDURE note_then_nap(id int, seconds float8) LANGUAGE plpgsql
AS $$ BEGIN INSERT INTO notes VALUES (id); COMMIT; PERFORM pg_catalog.pg_sleep(seconds); END $$;
"""


@procedure(timeout=0.3)
async def nap(seconds: float) -> int: ...


@procedure("nap")
async def nap_freely(seconds: float) -> int: ...


@procedure("nap", timeout=60)
async def nap_long(seconds: float) -> int: ...


@procedure(autocommit=True, timeout=0.3)
async def note_then_nap(id: int, seconds: float) -> None: ...


@query("INSERT INTO notes VALUES (%(id)s)")
async def note(id: int) -> None: ...


@query("SELECT pg_catalog.current_setting('statement_timeout')")
async def statement_timeout() -> str: ...


@query("SELECT pg_catalog.pg_backend_pid()")
async def backend() -> int: ...


@pytest.fixture
def dsn(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(SCHEMA)
    return pg_dsn


def _ms(setting: str) -> float:
    """A ``statement_timeout`` as the server shows it (``4700ms``, ``5s``, ``0``), in milliseconds."""
    for unit, factor in (("ms", 1), ("s", 1000), ("min", 60_000)):
        if setting.endswith(unit) and setting[: -len(unit)].isdigit():
            return int(setting[: -len(unit)]) * factor
    return float(setting)


async def test_a_stub_timeout_stops_the_call_and_the_session_rolls_back(dsn: str, pg_exec: Exec) -> None:
    """A call past its stub's timeout raises `DeadlineError` naming the stub and the limit; the session's earlier
    write is rolled back, and the connection serves the next session."""
    async with Database(dsn, max_size=1) as db:
        with pytest.raises(DeadlineError) as caught:
            async with db.session():
                await note(1)
                pid = await backend()
                await nap(5)
        async with db.session():
            assert await backend() == pid  # given back, sound, and used again
            assert await nap(0) == 1
    err = caught.value
    assert f"{__name__}.nap:" in str(err)
    assert "function nap" in str(err)
    assert "timeout of 0.3 s" in str(err)
    assert "statement_timeout" in str(err)
    assert (err.seconds, err.limit) == (0.3, "timeout")
    assert isinstance(err.__cause__, psycopg.errors.QueryCanceled)
    assert pg_exec("SELECT * FROM notes") == []


@pytest.mark.slow
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


@query("SELECT pg_catalog.pg_sleep(%(seconds)s)", timeout=0.3)
async def doze(seconds: float) -> None: ...


async def test_a_timed_call_that_begins_the_transaction_limits_its_statement_only(dsn: str) -> None:
    """A timed call that is its session's first statement (the BEGIN sent with it, no catalog read before) limits
    that statement alone: the next ones have the transaction's own setting."""
    for _ in range(2):
        async with session(dsn):
            await doze(0)
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


@pytest.mark.slow
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
            deadline = s._state.deadline
            assert deadline is not None
            admin.execute("SELECT pg_catalog.pg_sleep(%s)", [deadline[0] - time.monotonic()])
            last = admin.execute(activity, [pid]).fetchall()
            try:
                await nap_freely(0)
            finally:
                after = admin.execute(activity, [pid]).fetchall()
    assert after == last
    assert "session's deadline of 1.5 s" in str(caught.value)
    assert "nothing was sent" in str(caught.value)
    assert caught.value.limit == "deadline"


@pytest.mark.slow
async def test_a_session_deadline_stops_a_call_that_runs_past_it(dsn: str) -> None:
    """A call with a longer timeout of its own is stopped at its session's deadline."""
    with pytest.raises(DeadlineError) as caught:
        async with session(dsn, deadline=0.5):
            await nap_long(5)
    assert f"{__name__}.nap_long" in str(caught.value)
    assert "deadline of 0.5 s" in str(caught.value)


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


#: The backends of an application (the test's schema) sleeping in ``pg_sleep``.
SLEEPING = (
    "SELECT pid FROM pg_catalog.pg_stat_activity WHERE wait_event OPERATOR(pg_catalog.=) 'PgSleep' "
    "AND application_name OPERATOR(pg_catalog.=) %s"
)


async def test_a_users_own_cancel_is_not_a_deadline(dsn: str, admin: psycopg.Connection[Any]) -> None:
    """A statement cancelled with ``pg_cancel_backend`` before its limit raises the server's QueryCanceled, not
    `DeadlineError`."""
    found: list[int] = []
    name = conninfo_to_dict(dsn)["application_name"]

    def cancel() -> None:
        give_up = time.monotonic() + 20
        while not found and time.monotonic() < give_up:
            found.extend(pid for (pid,) in admin.execute(SLEEPING, [name]).fetchall())
        if found:
            admin.execute("SELECT pg_catalog.pg_cancel_backend(%s)", [found[0]])

    canceller = threading.Thread(target=cancel)
    canceller.start()
    try:
        with pytest.raises(psycopg.errors.QueryCanceled) as caught:
            async with session(dsn):
                await nap_long(30)
    finally:
        canceller.join()
    assert found
    assert not isinstance(caught.value, DeadlineError)


# -- a server that does not answer ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own() -> Iterator[TemporaryServer]:
    """A server of this module's own, whose backends the tests stop; its conninfo carries a password."""
    with TemporaryServer() as started:
        with psycopg.connect(started.dsn, autocommit=True) as conn:
            conn.execute(SCHEMA)
        yield started


def _stopped(pid: int) -> Callable[[], None]:
    os.kill(pid, signal.SIGSTOP)
    return lambda: os.kill(pid, signal.SIGCONT)


@pytest.mark.slow
@pytest.mark.timing
async def test_a_call_whose_server_stops_answering_raises_within_its_bound(
    own: TemporaryServer, figures: Callable[[str], None]
) -> None:
    """With its backend stopped (SIGSTOP), a call raises `DeadlineError` within its timeout and the client's grace,
    and its connection is closed, never given back to the pool."""
    async with Database(make_conninfo(own.dsn, password=SECRET), max_size=1) as db:
        with pytest.raises(DeadlineError) as caught:
            async with db.session():
                pid = await backend()
                cont = _stopped(pid)
                try:
                    started = time.monotonic()
                    try:
                        await nap(0)
                    finally:
                        took = time.monotonic() - started
                finally:
                    cont()
        async with db.session():
            assert await backend() != pid
    figures(f"{KIND}: a call with timeout=0.3 on a stopped backend raised DeadlineError after {took:.2f} s")
    assert took < 0.3 + CLIENT_BOUND
    assert "connection was closed" in str(caught.value)
    assert SECRET not in str(caught.value)


# -- checks --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan"), "1", True])
def test_a_stub_timeout_must_be_a_positive_number_of_seconds(timeout: Any) -> None:
    """A stub's timeout that is not a number of seconds greater than 0 is refused when it is decorated."""
    with pytest.raises(SignatureError, match=r"<locals>\.one: @query\(timeout=\.\.\.\) takes a number"):

        @query("SELECT 1", timeout=timeout)
        async def one() -> int: ...


if True:  # ASYNC
    pass  # checked when the session or the Database is made, before it is entered: one kind is enough
else:

    def test_a_session_deadline_must_be_a_positive_number_of_seconds(dsn: str) -> None:
        """A session's deadline that is not a number of seconds greater than 0 is refused when the session is
        made."""
        with pytest.raises(ArgumentError, match=r"session\(\): deadline= takes a number of seconds"):
            session(dsn, deadline=0)
        with pytest.raises(ArgumentError, match=r"Database.session\(\): deadline= takes"):
            Database(dsn).session(deadline="5")  # type: ignore[arg-type, unused-ignore]

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("timeout", 0),
            ("timeout", "30"),
            ("min_size", -1),
            ("min_size", 1.5),
            ("max_size", 0),
            ("check", "yes"),
            ("prepare", 1),
            ("idle_in_transaction_timeout", -5),
            ("leak_timeout", float("nan")),
            ("replica_wait", -1),
            ("replica_timeout", 0),
            ("slow_call", -1),
        ],
    )
    def test_database_options_are_checked_when_it_is_made(option: str, value: Any) -> None:
        """A Database option of the wrong type or value raises `ArgumentError` naming it, before anything
        connects."""
        with pytest.raises(ArgumentError, match=rf"Database\({option}=\.\.\.\) takes"):
            Database("postgresql://localhost/app", **{option: value})

    def test_database_sizes_must_fit_together() -> None:
        """A max_size below min_size is refused, with both named."""
        with pytest.raises(ArgumentError, match=r"max_size=2\) is smaller than min_size=5"):
            Database("postgresql://localhost/app", min_size=5, max_size=2)


async def test_opening_a_database_whose_server_refuses_fails_at_once(figures: Callable[[str], None]) -> None:
    """Opening a Database on a port where nothing listens raises `UnreachableError` at once (not after its 30 s
    timeout), with the server's reason and the conninfo masked."""
    conninfo = f"postgresql://ann:{SECRET}@127.0.0.1:{free_port()}/app"
    started = time.monotonic()
    with pytest.raises(UnreachableError) as caught:
        async with Database(conninfo):
            pass
    took = time.monotonic() - started
    figures(f"{KIND}: a Database opened on a port where nothing listens raised UnreachableError after {took:.2f} s")
    assert took < 5
    text = str(caught.value)
    assert "refused" in text
    assert "127.0.0.1" in text
    assert SECRET not in text


@pytest.mark.slow
async def test_opening_a_database_with_a_wrong_password_fails_at_once(own: TemporaryServer) -> None:
    """A server that refuses the login is said at once too, with its reason."""
    conninfo = make_conninfo(own.dsn, user="nobody_here", password=SECRET)
    with pytest.raises(UnreachableError, match="nobody_here") as caught:
        async with Database(conninfo):
            pass
    assert SECRET not in str(caught.value)


@query("SELECT 1", timeout=0.2)
async def one_in_time() -> int: ...


@pytest.mark.slow
async def test_a_call_answered_after_its_cancel_was_sent_raises_and_its_connection_is_closed(
    own: TemporaryServer,
) -> None:
    """A call whose answer reaches the client only after the watchdog sent its cancel request raises
    `DeadlineError`, and its connection is closed, never given back: the cancel could stop another statement. With
    a libpq older than 17, whose only cancel request blocks (holding the interpreter lock in psycopg's C build, so
    that this process's proxy could not pass it on), none is sent: the connection is ended instead."""
    proxy = StallingProxy(own.dsn)
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


@pytest.mark.slow
async def test_a_session_deadline_bounds_the_wait_for_a_connection(dsn: str) -> None:
    """A session whose pool has no free connection raises `DeadlineError` when its deadline passes (not after the
    pool's own timeout), having sent nothing: the connection held by another task's session (sync, another
    thread's)."""
    async with Database(dsn, max_size=1, timeout=10) as db:
        if True:  # ASYNC
            held, done = asyncio.Event(), asyncio.Event()
        else:
            held, done = threading.Event(), threading.Event()

        async def hold() -> None:
            async with db.session():
                await backend()
                held.set()
                await done.wait()

        if True:  # ASYNC
            holder = asyncio.ensure_future(hold())
        else:
            holder = threading.Thread(target=hold)
            holder.start()
        try:
            if True:  # ASYNC
                await held.wait()
            else:
                assert held.wait(30)
            with pytest.raises(DeadlineError, match="no connection of its pool was free in time"):
                async with db.session(deadline=0.5):
                    await backend()
        finally:
            done.set()
            if True:  # ASYNC
                await holder
            else:
                holder.join()
