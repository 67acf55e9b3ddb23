"""A `Database`'s async pool: opened by ``async with``, configured per connection, opened anew in a forked child,
and closed. This is the async source; `_sources.pool` (the sync pool) is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import asyncio
import os
from time import monotonic
from types import TracebackType
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from typing_extensions import Self

from pgdecor._errors import NoSessionError, add_note
from pgdecor._wire.shield import finish

from . import fork as forked
from . import probe_async as probe
from .config import BORROW_DEADLINE, CHECK_GRACE, DatabaseBase, network_defaults

__all__ = ["AsyncPools"]


class AsyncPools(DatabaseBase):
    """`Database`'s pool of this kind (see `pgdecor.Database`)."""

    @property
    def apool(self) -> AsyncConnectionPool[Any]:
        """The psycopg_pool pool, while the database is open (in a forked child, it is opened anew by the first
        session, or by `aready`)."""
        if self._apool is None:
            if True:  # ASYNC
                how = "async with"
            else:
                how = "with"
            raise NoSessionError(self._closed_message(how))
        return self._apool

    async def aready(self) -> AsyncConnectionPool[Any]:
        """`apool`, opened anew first in a process forked after the database was opened."""
        if True:  # ASYNC
            pass
        else:
            self._serve_sync_sessions()
        pool = self.apool
        if self._pid == os.getpid():
            return pool
        async with self._areopening():
            if self._pid != os.getpid():
                forked.inherit(pool)
                self._apool = await self._aopen_pool()
                self._pid = os.getpid()  # after: others wait for the new pool
        return self.apool

    async def _agetconn(self, timeout: float | None = None) -> AsyncConnection[Any]:
        """A connection from the pool (opened anew first in a forked child), within `timeout` seconds in all (or
        *timeout*, if shorter), the check of the connection included; a `PoolTimeout` says why there was none."""
        started = monotonic()
        bound = self.timeout if timeout is None else min(timeout, self.timeout)
        token = BORROW_DEADLINE.set(started + bound)
        try:
            conn: AsyncConnection[Any] = await (await self.aready()).getconn(bound)
        except PoolTimeout as err:
            add_note(err, self._timed_out(started))
            raise
        finally:
            BORROW_DEADLINE.reset(token)
        return conn

    async def _acheck_borrowed(self, conn: AsyncConnection[Any]) -> None:
        """The pool's check of a connection it hands out: answered by the deadline of the borrow (`timeout` from
        now, for a borrow from the pool itself), `CHECK_GRACE` at the least; closed, and the pool tries another,
        if not."""
        now = monotonic()
        deadline = BORROW_DEADLINE.get() or now + self.timeout
        try:
            # To its end even if the borrower is cancelled meanwhile (a request whose client hung up): cut short, it
            # would leave the connection busy, for the pool to throw away and replace.
            await finish(probe.check(conn, max(deadline, now + CHECK_GRACE)))
        except psycopg.errors.ConnectionTimeout:
            self._unanswered_at = monotonic()
            raise

    async def _areach(self) -> None:
        """Connect once, and close: a server that cannot be reached (none there, an unknown host, a refusal) is an
        `UnreachableError` at once, not a pool's retries for `timeout` seconds."""
        kwargs = {"autocommit": True, **network_defaults(self.conninfo, self.kwargs), **self.kwargs}
        try:
            conn = await AsyncConnection.connect(self._first_conninfo(), **kwargs)
        except psycopg.OperationalError as err:
            raise self._unreachable(err) from None  # libpq's words, scrubbed, are in the message
        await conn.close()

    async def _aopen_pool(self) -> AsyncConnectionPool[Any]:
        await self._areach()
        check = self._acheck_borrowed if self.check else None
        pool = AsyncConnectionPool(self.conninfo, configure=self._aconfigure, check=check, **self._pool_kwargs())
        try:
            await pool.open(wait=self.min_size > 0, timeout=self.timeout)
        except BaseException:
            await pool.close()
            raise
        return pool

    async def _aconfigure(self, conn: AsyncConnection[Any]) -> None:
        self.pooler = await probe.configure(conn, self.idle_in_transaction_timeout, self.prepare)

    async def __aenter__(self) -> Self:
        if True:  # ASYNC
            self.is_async = True
        self._apool = await self._aopen_pool()
        self._pid = os.getpid()
        try:
            if self.replica is not None:
                await self.replica.__aenter__()
        except BaseException:
            await self._apool.close()
            self._apool = None
            raise
        forked.track(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pool, self._apool = self._apool, None
        try:
            if self.replica is not None:
                await self.replica.__aexit__(exc_type, exc, tb)
        finally:
            if pool is not None and not forked.inherited(pool):
                await pool.close()
            if True:  # ASYNC
                # The pool of its sync sessions, if it opened one (closing waits for the pool's workers: a thread).
                sync_pool, self._pool = self._pool, None
                if sync_pool is not None and not forked.inherited(sync_pool):
                    await asyncio.to_thread(sync_pool.close)
