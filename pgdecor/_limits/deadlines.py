"""Deadlines: a stub's ``timeout=`` and a session's ``deadline=``, the time a call is given, and how it is held to it.

A call that has one runs its statement with ``statement_timeout`` set LOCAL to what is left, in the same pipeline
(one round trip): inside a transaction, the setting the transaction had is put back by a third statement of that
pipeline, so that later statements are not limited; in autocommit, the pipeline's implicit transaction ends with
it. Nothing is SET for the session (a transaction pooler would leave it on a server connection other clients
share). Should the server not answer at all (stopped, or the network to it down), `Watchdog` asks it to cancel
`GRACE` seconds after the limit, and shuts the connection's socket down `GRACE` seconds later: the call raises, and
its pool throws the connection away. Calls pay nothing for this until a limit exists somewhere in the process.
The same thread ends a connection whose check, paid by the answer to a BEGIN sent with a cursor's statement, is not
answered by its deadline (`Watchdog.check`, `_session.begin_async`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import os
import socket
import threading
from collections.abc import Callable
from time import monotonic
from typing import Any, Protocol

import psycopg

from pgdecor._errors import DeadlineError

from .options import Switch, seconds_option

__all__ = [
    "GRACE",
    "KEEP_AND_SET_TIMEOUT",
    "RESTORE_TIMEOUT",
    "SET_TIMEOUT",
    "Limit",
    "armed",
    "limit_for",
    "seconds_given",
    "watchdog",
]

logger = logging.getLogger("pgdecor")

#: Seconds past a limit after which a call whose server has not answered is cancelled by the client, and as many
#: again after which its connection is ended.
GRACE = 1.0

#: The statement timeout of the statement that follows in the pipeline (autocommit: the implicit transaction).
SET_TIMEOUT = "SELECT pg_catalog.set_config('statement_timeout', %s, true)"
#: The same, inside a transaction: the transaction's own setting kept aside first, for `RESTORE_TIMEOUT`.
KEEP_AND_SET_TIMEOUT = (
    "SELECT pg_catalog.set_config('pgdecor.statement_timeout', pg_catalog.current_setting('statement_timeout'), "
    "true), pg_catalog.set_config('statement_timeout', %s, true)"
)
RESTORE_TIMEOUT = (
    "SELECT pg_catalog.set_config('statement_timeout', pg_catalog.current_setting('pgdecor.statement_timeout'), true)"
)

_QUERY_CANCELED = "57014"


#: Whether any limit exists in the process (the calls' only test while none does).
armed = Switch()


def seconds_given(what: str, seconds: object, error: type[Exception]) -> float | None:
    """*seconds* checked (else *error*): None (no limit), or a number of seconds greater than 0; arms the calls."""
    limit = seconds_option(what, seconds, error, zero=False)
    if limit is not None:
        armed.on = True
    return limit


class Limit:
    """The time one call is given: its stub's timeout, or what is left of its session's deadline, the sooner."""

    __slots__ = ("at", "kind", "seconds", "sql_object", "stub")

    def __init__(self, stub: str, sql_object: str, timeout: float | None, deadline: tuple[float, float] | None) -> None:
        self.stub, self.sql_object = stub, sql_object
        now = monotonic()
        self.kind, self.seconds, self.at = "timeout", 0.0, math.inf
        if timeout is not None:
            self.seconds, self.at = timeout, now + timeout
        if deadline is not None and deadline[0] < self.at:
            self.kind, self.at, self.seconds = "deadline", deadline[0], deadline[1]

    def left(self) -> float:
        """Seconds left; raises `DeadlineError` if none are (nothing is sent then)."""
        left = self.remaining()
        if left <= 0:
            raise self.error("it had passed before the call began, so nothing was sent to the server")
        return left

    def remaining(self) -> float:
        """Seconds left, perhaps none (or fewer)."""
        return self.at - monotonic()

    def error(self, how: str) -> DeadlineError:
        if self.kind == "timeout":
            given = f"its timeout of {self.seconds:g} s (the stub's timeout=)"
            fix = "give the stub a longer timeout=, or make what it runs faster"
        else:
            given = f"its session's deadline of {self.seconds:g} s (session(..., deadline=))"
            fix = "give the session a longer deadline=, or do less in it"
        msg = (
            f"{self.stub}: {self.sql_object} ran out of {given}: {how}; the session rolls back, as for any error "
            f"inside it; {fix}"
        )
        return DeadlineError(msg, self.seconds, self.kind)

    def late(self) -> DeadlineError:
        """What a call whose server answered after the watchdog had asked it to cancel raises."""
        return self.error(
            "the server answered only after it had been asked to cancel, a request that could still stop a later "
            "statement, so the connection was closed (it is not given back to its pool)"
        )

    def ours(self, err: BaseException, watch: Watch) -> DeadlineError | None:
        """The `DeadlineError` that *err* (raised while *watch* watched the call) means, if any: the server's
        cancel after the statement timeout it was given (not a cancel of someone else's: that comes before it), or
        the connection ended by the watchdog."""
        if isinstance(err, DeadlineError):
            return None
        if watch.state == _ENDED:
            return self.error(
                "the server did not answer in time, nor its cancel request, so the connection was closed "
                f"(it is not given back to its pool) {2 * GRACE:g} s after the limit"
            )
        if getattr(err, "sqlstate", None) != _QUERY_CANCELED:
            return None
        if watch.state == _CANCELLED:
            return self.error(f"the server did not answer in time, so it was asked to cancel {GRACE:g} s after it")
        if self.remaining() <= 0:
            return self.error("the server stopped the statement (statement_timeout)")
        return None


class Timed(Protocol):
    """What a call's limit reads of its session: its deadline (`time.monotonic` end, seconds given), if any."""

    @property
    def deadline(self) -> tuple[float, float] | None: ...


#: A connection the watchdog cancels, then shuts down, of either kind.
AnyConnection = psycopg.Connection[Any] | psycopg.AsyncConnection[Any]


def limit_for(stub: str, sql_object: str, timeout: float | None, sess: Timed) -> Limit | None:
    """The limit of a call of *stub* in the session *sess*, if either has one."""
    deadline = sess.deadline
    if timeout is None and deadline is None:
        return None
    return Limit(stub, sql_object, timeout, deadline)


_WATCHING, _CANCELLED, _ENDED = 0, 1, 2


class Watch:
    """One call the watchdog watches: its connection, what the watchdog did to it so far, and whether the call has
    ended; for a connection's check (`Watchdog.check`), what tells whether the server answered it."""

    __slots__ = ("answered", "conn", "ended", "state")

    def __init__(self, conn: AnyConnection, answered: Callable[[], bool] | None = None) -> None:
        self.conn = conn
        self.answered = answered
        self.state = _WATCHING
        self.ended = False


class Watchdog:
    """One thread for the process that cancels, then ends, the calls whose server does not answer past their limit
    (see the module docstring), and ends the connections whose check a statement pays unanswered by its deadline.
    Sync and async calls alike: it only asks the server, and shuts a socket down."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._pid = 0
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        """In a forked child: a lock of its own (the parent's may have been held by a thread the child does not
        have), and nothing watched (its thread is started again at the first watch)."""
        self._cond = threading.Condition()
        self._due, self._pid = [], 0

    def watch(self, conn: AnyConnection, seconds: float) -> Watch:
        """Watch a call on *conn* from now, given *seconds*; `done` once it has ended, however it ended."""
        return self._add(Watch(conn), monotonic() + seconds + GRACE)

    def check(self, conn: AnyConnection, deadline: float, answered: Callable[[], bool]) -> Watch:
        """Watch the check of *conn* that a statement's answer pays (`_wire.owed`): at *deadline* (`time.monotonic`)
        the watchdog shuts the connection down unless *answered*; `done` once the statement's results are read, or
        it failed (True then if the watchdog shut it down)."""
        return self._add(Watch(conn, answered), deadline)

    def _add(self, watch: Watch, at: float) -> Watch:
        with self._cond:
            if self._pid != os.getpid():  # first use, or a forked child: its thread is the parent's
                self._pid, self._due = os.getpid(), []
                threading.Thread(target=self._run, name="pgdecor-deadlines", daemon=True).start()
            heapq.heappush(self._due, (at, next(self._order), watch))
            if self._due[0][2] is watch:
                self._cond.notify()
        return watch

    def done(self, watch: Watch) -> bool:
        """The call has ended: the watchdog leaves its connection alone from now on. True if it had acted on it
        already: its cancel request may then reach the server later, while the connection runs its next statement
        (another session's, once given back), so the connection must serve no other."""
        with self._cond:
            watch.ended = True
            return watch.state != _WATCHING

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._due and self._due[0][2].ended:
                    heapq.heappop(self._due)
                if not self._due:
                    self._cond.wait()
                    continue
                at, _, watch = self._due[0]
                wait = at - monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._due)
                if watch.answered is not None:  # a check: nothing to cancel (the answer did not come)
                    if not watch.answered():
                        watch.state = _ENDED
                        _end(watch.conn)
                elif watch.state == _WATCHING:
                    watch.state = _CANCELLED
                    # A thread of its own: libpq's cancel request may wait for a server that does not answer.
                    threading.Thread(target=_cancel, args=(watch.conn,), name="pgdecor-cancel", daemon=True).start()
                    heapq.heappush(self._due, (at + GRACE, next(self._order), watch))
                elif watch.state == _CANCELLED:
                    watch.state = _ENDED
                    _end(watch.conn)


watchdog = Watchdog()


def _cancel(conn: AnyConnection) -> None:
    # libpq's cancel request in the non-blocking form (libpq 17 and later), bounded: the blocking one holds the
    # interpreter's lock in psycopg's C build for as long as the server does not answer, which would stop every
    # thread of the process, the watchdog's included. Without it, the connection is ended without asking.
    if not psycopg.capabilities.has_cancel_safe():
        return
    try:
        if isinstance(conn, psycopg.AsyncConnection):
            asyncio.run(conn.cancel_safe(timeout=GRACE))  # a loop of this thread's own: the request's socket is new
        else:
            conn.cancel_safe(timeout=GRACE)
    except Exception:  # the connection is ended next, if the server does not stop the call
        logger.warning("pgdecor: could not ask the server to cancel a call past its deadline", exc_info=True)


def _end(conn: AnyConnection) -> None:
    """Shut *conn*'s socket down: the call waiting on it fails at once, and the connection is broken (its pool throws
    it away). Closing the descriptor is left to psycopg, which owns it."""
    if conn.closed:
        return
    try:
        sock = socket.socket(fileno=os.dup(conn.fileno()))
    except Exception:  # noqa: BLE001 - closed meanwhile: the call has ended
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
