"""One of a `Database`'s pools, the one of this kind's sessions (see `_sources.database`): opened, configured per
connection, checked at borrow, opened anew in a forked child, and closed. This is the async source;
`_sources.pool` (the sync pool) is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import asyncio
import os
import threading
from time import monotonic
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pgdecor._errors import add_note
from pgdecor._wire import owed
from pgdecor._wire.shield import finish

from . import fork as forked
from . import probe_async as probe
from .config import BORROW_DEADLINE, CHECK_GRACE, OWING, Observed, PoolSettings

__all__ = ["AsyncPool"]


class AsyncPool:
    """A database's psycopg_pool pool of this kind, while it is open (see the module docstring)."""

    __slots__ = ("__weakref__", "_observed", "_pid", "_reopen", "_settings", "opened")

    def __init__(self, settings: PoolSettings, observed: Observed) -> None:
        self._settings = settings
        self._observed = observed
        #: The psycopg_pool pool, while the database is open for this kind of session.
        self.opened: AsyncConnectionPool[Any] | None = None
        #: The process that opened it: a forked child opens its own (see `_sources.fork`).
        self._pid = 0
        if True:  # ASYNC
            #: Held while a task opens the pool anew in a forked child: a lock of this process's own.
            self._reopen: tuple[int, asyncio.Lock] | None = None
        else:
            #: Held while a thread opens the pool: anew in a forked child, or for the first sync session of a
            #: database opened with `async with`.
            self._reopen = threading.Lock()

    async def aopen(self) -> None:
        """Open the pool: a server that cannot be reached is an `UnreachableError` at once (see `_areach`)."""
        self.opened = await self._aopen_pool()
        self._pid = os.getpid()
        forked.track(self)

    async def aclose(self) -> None:
        """Close the pool (unless it is a parent process's)."""
        pool, self.opened = self.opened, None
        if pool is not None and not forked.inherited(pool):
            await pool.close()

    async def aready(self) -> AsyncConnectionPool[Any] | None:
        """The pool, opened anew first in a process forked after it was opened; None while it is closed."""
        pool = self.opened
        if pool is None or self._pid == os.getpid():
            return pool
        async with self._areopening():
            if self._pid != os.getpid():
                forked.inherit(pool)
                self.opened = await self._aopen_pool()
                self._pid = os.getpid()  # after: others wait for the new pool
        return self.opened

    if True:  # ASYNC
        pass
    else:

        def serve(self) -> None:
            """Open the pool for the first sync session of a database opened with `async with` (a framework's sync
            handlers, run in threads); it is closed with the database."""
            if self.opened is None:
                with self._reopening():
                    if self.opened is None:
                        self.open()

    async def agetconn(self, pool: AsyncConnectionPool[Any], timeout: float | None = None) -> AsyncConnection[Any]:
        """A connection from *pool* (`aready`'s) within the database's timeout in all (or *timeout*, if shorter),
        the check of the connection included; a `PoolTimeout` says why there was none."""
        settings = self._settings
        started = monotonic()
        bound = settings.timeout if timeout is None else min(timeout, settings.timeout)
        token = BORROW_DEADLINE.set(started + bound)
        try:
            conn: AsyncConnection[Any] = await pool.getconn(bound)
        except PoolTimeout as err:
            add_note(err, settings.timed_out(started, self._observed.unanswered_at))
            raise
        finally:
            BORROW_DEADLINE.reset(token)
        return conn

    def renew(self) -> None:
        """A new lock (in a forked child: another thread may have held this one at the fork)."""
        if True:  # ASYNC
            self._reopen = None
        else:
            self._reopen = threading.Lock()

    if True:  # ASYNC

        def _areopening(self) -> asyncio.Lock:
            """What a task holds while it opens the pool anew in a forked child (a lock of this process's own)."""
            pid = os.getpid()
            if self._reopen is None or self._reopen[0] != pid:
                self._reopen = (pid, asyncio.Lock())
            return self._reopen[1]

    else:

        def _areopening(self) -> threading.Lock:
            """What a thread holds while it opens the pool."""
            return self._reopen

    async def _acheck_borrowed(self, conn: AsyncConnection[Any]) -> None:
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
            await finish(probe.check(conn, deadline))
        except psycopg.errors.ConnectionTimeout:
            self._observed.unanswered_at = monotonic()
            raise

    async def _areach(self) -> None:
        """Connect once, and close: a server that cannot be reached (none there, an unknown host, a refusal) is an
        `UnreachableError` at once, not a pool's retries for `timeout` seconds."""
        settings = self._settings
        try:
            conn = await AsyncConnection.connect(settings.first_conninfo(), **settings.connect_kwargs())
        except psycopg.OperationalError as err:
            raise settings.unreachable(err) from None  # libpq's words, scrubbed, are in the message
        await conn.close()

    async def _aopen_pool(self) -> AsyncConnectionPool[Any]:
        await self._areach()
        settings = self._settings
        check = self._acheck_borrowed if settings.check else None
        pool = AsyncConnectionPool(settings.conninfo, configure=self._aconfigure, check=check, **settings.pool_kwargs())
        try:
            await pool.open(wait=settings.min_size > 0, timeout=settings.timeout)
        except BaseException:
            await pool.close()
            raise
        return pool

    async def _aconfigure(self, conn: AsyncConnection[Any]) -> None:
        settings = self._settings
        self._observed.pooler = await probe.configure(conn, settings.idle_in_transaction_timeout, settings.prepare)
