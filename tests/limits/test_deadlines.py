# Generated from tests/limits/test_deadlines_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.limits.test_deadlines_async`, generated from it: see there."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgdecor import ArgumentError, Database, DeadlineError, SignatureError, UnreachableError, procedure, query, session
from pgdecor.testing import TemporaryServer
from tests.fix_db import Exec
from tests.utils.servers import free_port
from tests.utils.stalling_proxy import StallingProxy

#: Seconds a call whose server does not answer may take past its limit: the watchdog's cancel, then its end of
#: the connection (2 x `_limits.deadlines.GRACE`), and some slack for a loaded machine.
CLIENT_BOUND = 2.0 + 1.5
SECRET = "deadline-s3cret"

#: The kind of the calls, in the figures measured.
KIND = "sync"

SCHEMA = """
CREATE TABLE notes (id int PRIMARY KEY);
CREATE FUNCTION nap(seconds float8) RETURNS int LANGUAGE sql AS $$ SELECT 1 FROM pg_catalog.pg_sleep(seconds) $$;
CREATE PROCEDURE note_then_nap(id int, seconds float8) LANGUAGE plpgsql
AS $$ BEGIN INSERT INTO notes VALUES (id); COMMIT; PERFORM pg_catalog.pg_sleep(seconds); END $$;
"""


@procedure(timeout=0.3)
def nap(seconds: float) -> int: ...


@procedure("nap")
def nap_freely(seconds: float) -> int: ...


@procedure("nap", timeout=60)
def nap_long(seconds: float) -> int: ...


@procedure(autocommit=True, timeout=0.3)
def note_then_nap(id: int, seconds: float) -> None: ...


@query("INSERT INTO notes VALUES (%(id)s)")
def note(id: int) -> None: ...


@query("SELECT pg_catalog.current_setting('statement_timeout')")
def statement_timeout() -> str: ...


@query("SELECT pg_catalog.pg_backend_pid()")
def backend() -> int: ...


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


def test_a_stub_timeout_stops_the_call_and_the_session_rolls_back(dsn: str, pg_exec: Exec) -> None:
    """A call past its stub's timeout raises `DeadlineError` naming the stub and the limit; the session's earlier
    write is rolled back, and the connection serves the next session."""
    with Database(dsn, max_size=1) as db:
        with pytest.raises(DeadlineError) as caught, db.session():
            note(1)
            pid = backend()
            nap(5)
        with db.session():
            assert backend() == pid  # given back, sound, and used again
            assert nap(0) == 1
    err = caught.value
    assert f"{__name__}.nap:" in str(err)
    assert "function nap" in str(err)
    assert "timeout of 0.3 s" in str(err)
    assert "statement_timeout" in str(err)
    assert (err.seconds, err.limit) == (0.3, "timeout")
    assert isinstance(err.__cause__, psycopg.errors.QueryCanceled)
    assert pg_exec("SELECT * FROM notes") == []


@pytest.mark.slow
def test_statements_after_a_timed_call_are_not_limited(dsn: str) -> None:
    """The statement timeout a call is given lasts for its statement only: later statements of the transaction
    have the transaction's own setting again, in a transaction and in autocommit."""
    with session(dsn):
        assert nap(0) == 1
        assert statement_timeout() == "0"
        assert nap_freely(0.4) == 1  # longer than nap's timeout
    with session(make_conninfo(dsn, options=f"{conninfo_to_dict(dsn)['options']} -c statement_timeout=7s")):
        assert nap(0) == 1
        assert statement_timeout() == "7s"
    with session(dsn, autocommit=True):
        assert nap(0) == 1
        assert statement_timeout() == "0"


@query("SELECT pg_catalog.pg_sleep(%(seconds)s)", timeout=0.3)
def doze(seconds: float) -> None: ...


def test_a_timed_call_that_begins_the_transaction_limits_its_statement_only(dsn: str) -> None:
    """A timed call that is its session's first statement (the BEGIN sent with it, no catalog read before) limits
    that statement alone: the next ones have the transaction's own setting."""
    for _ in range(2):
        with session(dsn):
            doze(0)
            assert statement_timeout() == "0"


def test_an_autocommit_procedure_is_stopped_at_its_timeout(dsn: str, pg_exec: Exec) -> None:
    """A procedure that commits itself is held to its timeout past its COMMIT; what it committed stays, and the
    session's next statement is not limited."""
    with pytest.raises(DeadlineError), session(dsn, autocommit=True):
        note_then_nap(1, 5)
    with session(dsn, autocommit=True):
        assert statement_timeout() == "0"
    assert pg_exec("SELECT * FROM notes") == [(1,)]


@pytest.mark.slow
def test_a_session_deadline_is_shared_by_its_statements(dsn: str, admin: psycopg.Connection[Any]) -> None:
    """Each call of a session with a deadline gets what is left of it; once it has passed, a call raises at once
    without sending anything."""
    activity = "SELECT query FROM pg_catalog.pg_stat_activity WHERE pid = %s"
    with pytest.raises(DeadlineError) as caught, session(dsn, deadline=1.5) as s:
        assert nap_freely(0.3) == 1
        left = _ms(statement_timeout())  # the statement timeout this very call was given
        assert 0 < left <= 1500 - 300
        pid = backend()
        deadline = s._state.deadline
        assert deadline is not None
        admin.execute("SELECT pg_catalog.pg_sleep(%s)", [deadline[0] - time.monotonic()])
        last = admin.execute(activity, [pid]).fetchall()
        try:
            nap_freely(0)
        finally:
            after = admin.execute(activity, [pid]).fetchall()
    assert after == last
    assert "session's deadline of 1.5 s" in str(caught.value)
    assert "nothing was sent" in str(caught.value)
    assert caught.value.limit == "deadline"


@pytest.mark.slow
def test_a_session_deadline_stops_a_call_that_runs_past_it(dsn: str) -> None:
    """A call with a longer timeout of its own is stopped at its session's deadline."""
    with pytest.raises(DeadlineError) as caught, session(dsn, deadline=0.5):
        nap_long(5)
    assert f"{__name__}.nap_long" in str(caught.value)
    assert "deadline of 0.5 s" in str(caught.value)


def test_a_deadline_passed_before_the_first_call_borrows_nothing(dsn: str, admin: psycopg.Connection[Any]) -> None:
    """A session whose deadline passed before its first call raises there without borrowing a connection."""
    with Database(dsn) as db:
        with pytest.raises(DeadlineError), db.session(deadline=0.1):
            admin.execute("SELECT pg_catalog.pg_sleep(0.15)")
            nap_freely(0)
        assert db.counters.borrowed == 0


#: The backends of an application (the test's schema) sleeping in ``pg_sleep``.
SLEEPING = (
    "SELECT pid FROM pg_catalog.pg_stat_activity WHERE wait_event OPERATOR(pg_catalog.=) 'PgSleep' "
    "AND application_name OPERATOR(pg_catalog.=) %s"
)


def test_a_users_own_cancel_is_not_a_deadline(dsn: str, admin: psycopg.Connection[Any]) -> None:
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
        with pytest.raises(psycopg.errors.QueryCanceled) as caught, session(dsn):
            nap_long(30)
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
def test_a_call_whose_server_stops_answering_raises_within_its_bound(
    own: TemporaryServer, figures: Callable[[str], None]
) -> None:
    """With its backend stopped (SIGSTOP), a call raises `DeadlineError` within its timeout and the client's grace,
    and its connection is closed, never given back to the pool."""
    with Database(make_conninfo(own.dsn, password=SECRET), max_size=1) as db:
        with pytest.raises(DeadlineError) as caught, db.session():
            pid = backend()
            cont = _stopped(pid)
            try:
                started = time.monotonic()
                try:
                    nap(0)
                finally:
                    took = time.monotonic() - started
            finally:
                cont()
        with db.session():
            assert backend() != pid
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
        def one() -> int: ...


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


def test_opening_a_database_whose_server_refuses_fails_at_once(figures: Callable[[str], None]) -> None:
    """Opening a Database on a port where nothing listens raises `UnreachableError` at once (not after its 30 s
    timeout), with the server's reason and the conninfo masked."""
    conninfo = f"postgresql://ann:{SECRET}@127.0.0.1:{free_port()}/app"
    started = time.monotonic()
    with pytest.raises(UnreachableError) as caught, Database(conninfo):
        pass
    took = time.monotonic() - started
    figures(f"{KIND}: a Database opened on a port where nothing listens raised UnreachableError after {took:.2f} s")
    assert took < 5
    text = str(caught.value)
    assert "refused" in text
    assert "127.0.0.1" in text
    assert SECRET not in text


@pytest.mark.slow
def test_opening_a_database_with_a_wrong_password_fails_at_once(own: TemporaryServer) -> None:
    """A server that refuses the login is said at once too, with its reason."""
    conninfo = make_conninfo(own.dsn, user="nobody_here", password=SECRET)
    with pytest.raises(UnreachableError, match="nobody_here") as caught, Database(conninfo):
        pass
    assert SECRET not in str(caught.value)


@query("SELECT 1", timeout=0.2)
def one_in_time() -> int: ...


@pytest.mark.slow
def test_a_call_answered_after_its_cancel_was_sent_raises_and_its_connection_is_closed(
    own: TemporaryServer,
) -> None:
    """A call whose answer reaches the client only after the watchdog sent its cancel request raises
    `DeadlineError`, and its connection is closed, never given back: the cancel could stop another statement. With
    a libpq older than 17, whose only cancel request blocks (holding the interpreter lock in psycopg's C build, so
    that this process's proxy could not pass it on), none is sent: the connection is ended instead."""
    proxy = StallingProxy(own.dsn)
    cancels = psycopg.capabilities.has_cancel_safe()
    try:
        with Database(proxy.dsn, max_size=1) as db:
            with pytest.raises(DeadlineError) as caught, db.session() as sess:
                pid = backend()
                conn = sess.connection()
                proxy.hold()
                one_in_time()
            assert proxy.cancel_seen.is_set() is cancels
            assert conn.closed
            if cancels:
                assert "after it had been asked to cancel" in str(caught.value)
            else:
                assert "the connection was closed" in str(caught.value)
            with db.session():
                assert backend() != pid
    finally:
        proxy.close()


@pytest.mark.slow
def test_a_session_deadline_bounds_the_wait_for_a_connection(dsn: str) -> None:
    """A session whose pool has no free connection raises `DeadlineError` when its deadline passes (not after the
    pool's own timeout), having sent nothing: the connection held by another task's session (sync, another
    thread's)."""
    with Database(dsn, max_size=1, timeout=10) as db:
        held, done = threading.Event(), threading.Event()

        def hold() -> None:
            with db.session():
                backend()
                held.set()
                done.wait()

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(30)
            with (
                pytest.raises(DeadlineError, match="no connection of its pool was free in time"),
                db.session(deadline=0.5),
            ):
                backend()
        finally:
            done.set()
            holder.join()
