# Generated from pgdecor/_sources/pool_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._sources.pool_async`, generated from it: see there."""

from __future__ import annotations

import os
import threading
from time import monotonic
from typing import Any

import psycopg
from psycopg import Connection
from psycopg_pool import ConnectionPool, PoolTimeout

from pgdecor._errors import add_note
from pgdecor._wire import owed

from . import fork as forked
from . import probe
from .config import BORROW_DEADLINE, CHECK_GRACE, OWING, Observed, PoolSettings

__all__ = ["Pool"]


class Pool:
    """A database's psycopg_pool pool of this kind, while it is open (see the module docstring)."""

    __slots__ = ("__weakref__", "_observed", "_pid", "_reopen", "_settings", "opened")

    def __init__(self, settings: PoolSettings, observed: Observed) -> None:
        self._settings = settings
        self._observed = observed
        #: The psycopg_pool pool, while the database is open for this kind of session.
        self.opened: ConnectionPool[Any] | None = None
        #: The process that opened it: a forked child opens its own (see `_sources.fork`).
        self._pid = 0
        self._reopen = threading.Lock()

    def open(self) -> None:
        """Open the pool: a server that cannot be reached is an `UnreachableError` at once (see `_reach`)."""
        self.opened = self._open_pool()
        self._pid = os.getpid()
        forked.track(self)

    def close(self) -> None:
        """Close the pool (unless it is a parent process's)."""
        pool, self.opened = self.opened, None
        if pool is not None and not forked.inherited(pool):
            pool.close()

    def ready(self) -> ConnectionPool[Any] | None:
        """The pool, opened anew first in a process forked after it was opened; None while it is closed."""
        pool = self.opened
        if pool is None or self._pid == os.getpid():
            return pool
        with self._reopening():
            if self._pid != os.getpid():
                forked.inherit(pool)
                self.opened = self._open_pool()
                self._pid = os.getpid()  # after: others wait for the new pool
        return self.opened

    def serve(self) -> None:
        """Open the pool for the first sync session of a database opened with `async with` (a framework's sync
        handlers, run in threads); it is closed with the database."""
        if self.opened is None:
            with self._reopening():
                if self.opened is None:
                    self.open()

    def getconn(self, pool: ConnectionPool[Any], timeout: float | None = None) -> Connection[Any]:
        """A connection from *pool* (`ready`'s) within the database's timeout in all (or *timeout*, if shorter),
        the check of the connection included; a `PoolTimeout` says why there was none."""
        settings = self._settings
        started = monotonic()
        bound = settings.timeout if timeout is None else min(timeout, settings.timeout)
        token = BORROW_DEADLINE.set(started + bound)
        try:
            conn: Connection[Any] = pool.getconn(bound)
        except PoolTimeout as err:
            add_note(err, settings.timed_out(started, self._observed.unanswered_at))
            raise
        finally:
            BORROW_DEADLINE.reset(token)
        return conn

    def renew(self) -> None:
        """A new lock (in a forked child: another thread may have held this one at the fork)."""
        self._reopen = threading.Lock()

    def _reopening(self) -> threading.Lock:
        """What a thread holds while it opens the pool."""
        return self._reopen

    def _check_borrowed(self, conn: Connection[Any]) -> None:
        """The pool's check of a connection it hands out: answered by the deadline of the borrow (`timeout` from
        now, for a borrow from the pool itself), `CHECK_GRACE` at the least; closed, and the pool tries another,
        if not."""
        now = monotonic()
        deadline = max(BORROW_DEADLINE.get() or now + self._settings.timeout, now + CHECK_GRACE)
        pgconn = conn.pgconn
        back = owed.returned.get(pgconn)
        if OWING.get() and back is not None and now - back < owed.RECENT and owed.quiet(pgconn):
            owed.owed[pgconn] = owed.Owed(deadline, self._settings)  # paid by the call's first statement
            return
        try:
            # To its end even if the borrower is cancelled meanwhile (a request whose client hung up): cut short, it
            # would leave the connection busy, for the pool to throw away and replace.
            probe.check(conn, deadline)
        except psycopg.errors.ConnectionTimeout:
            self._observed.unanswered_at = monotonic()
            raise

    def _reach(self) -> None:
        """Connect once, and close: a server that cannot be reached (none there, an unknown host, a refusal) is an
        `UnreachableError` at once, not a pool's retries for `timeout` seconds."""
        settings = self._settings
        try:
            conn = Connection.connect(settings.first_conninfo(), **settings.connect_kwargs())
        except psycopg.OperationalError as err:
            raise settings.unreachable(err) from None  # libpq's words, scrubbed, are in the message
        conn.close()

    def _open_pool(self) -> ConnectionPool[Any]:
        self._reach()
        settings = self._settings
        check = self._check_borrowed if settings.check else None
        pool = ConnectionPool(settings.conninfo, configure=self._configure, check=check, **settings.pool_kwargs())
        try:
            pool.open(wait=settings.min_size > 0, timeout=settings.timeout)
        except BaseException:
            pool.close()
            raise
        return pool

    def _configure(self, conn: Connection[Any]) -> None:
        settings = self._settings
        self._observed.pooler = probe.configure(conn, settings.idle_in_transaction_timeout, settings.prepare)
