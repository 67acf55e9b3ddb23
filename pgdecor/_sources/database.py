"""`DatabaseSource`: a `Database` as the source of its sessions. It owns the database's pools, one for each kind of
session (`_sources.pool_async.AsyncPool` and its generated twin `_sources.pool.Pool`), its replica's source, its
counters and its leak guard; `pgdecor.Database` (in `_service.database`) owns it, and adds the service.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from pgdecor._counters import Counters, counters
from pgdecor._errors import NoSessionError, add_note

from .config import Observed, PoolSettings, unreachable, where
from .guard import LeakGuard
from .pool import Pool
from .pool_async import AsyncPool
from .replicas import Health
from .source import BaseSource, Settings

__all__ = ["DatabaseSource"]

P = TypeVar("P", ConnectionPool[Any], AsyncConnectionPool[Any])


class DatabaseSource(BaseSource):
    """A `Database`'s pools and what its sessions share (a `Source`; see the module docstring)."""

    __slots__ = (
        "_apool",
        "_observed",
        "_pool",
        "_pool_settings",
        "_replica",
        "counters",
        "guard",
        "health",
        "is_async",
        "settings",
    )

    def __init__(
        self, pools: PoolSettings, settings: Settings, leak_timeout: float | None, replica: DatabaseSource | None
    ) -> None:
        self._pool_settings = pools
        self.settings = settings
        self._observed = Observed()
        self._pool = Pool(pools, self._observed)
        self._apool = AsyncPool(pools, self._observed)
        self.counters = Counters(_parent=counters)
        self.guard = LeakGuard(self.counters, leak_timeout)
        #: Whether this database, as a replica, can be reached.
        self.health = Health(where(pools.conninfo))
        self._replica = replica
        #: Whether it was opened with ``async with``: it then serves sessions of both kinds.
        self.is_async = False

    def __repr__(self) -> str:
        return self.describe()

    # -- as a source ------------------------------------------------------------------------------------------

    @property
    def replica(self) -> DatabaseSource | None:
        return self._replica

    @property
    def pooler(self) -> bool | None:
        """Whether the last connection configured was behind a pooler (None: none configured yet)."""
        return self._observed.pooler

    def describe(self) -> str:
        state = "open" if self._pool.opened or self._apool.opened else "closed"
        return f"<pgdecor Database {self._pool_settings.shown} ({'async, ' if self.is_async else ''}{state})>"

    def serves(self, *, is_async: bool) -> bool:
        # Opened with `async with`, it serves both kinds; never opened, the borrow says how to open it.
        never_opened = self._pool.opened is None and self._apool.opened is None
        return self.is_async or not is_async or never_opened

    def own_connection(self, what: str) -> tuple[str, dict[str, Any]]:  # noqa: ARG002 - every database can
        return self._pool_settings.conninfo, dict(self._pool_settings.kwargs)

    async def aconnect(self, timeout: float | None) -> AsyncConnection[Any]:
        pool = await self.aready()
        try:
            return await self._apool.agetconn(pool, timeout)
        except psycopg.OperationalError as err:
            self._noted(err)
            raise

    async def agive_back(self, conn: AsyncConnection[Any]) -> None:
        await self.apool.putconn(conn)

    def connect(self, timeout: float | None) -> Connection[Any]:
        pool = self.ready()
        try:
            return self._pool.getconn(pool, timeout)
        except psycopg.OperationalError as err:
            self._noted(err)
            raise

    def give_back(self, conn: Connection[Any]) -> None:
        self.pool.putconn(conn)

    def _noted(self, err: psycopg.OperationalError) -> None:
        if not isinstance(err, PoolTimeout):  # the pool said why already
            add_note(err, unreachable(self.describe(), self._pool_settings.conninfo))

    # -- its pools ---------------------------------------------------------------------------------------------

    @property
    def pool(self) -> ConnectionPool[Any]:
        """The pool of sync sessions, while the database is open for them."""
        return self._open(self._pool.opened, "with")

    @property
    def apool(self) -> AsyncConnectionPool[Any]:
        """The pool of async sessions, while the database is open for them."""
        return self._open(self._apool.opened, "async with")

    def ready(self) -> ConnectionPool[Any]:
        """`pool`, opened anew first in a process forked after the database was opened; opened at the first sync
        session of a database opened with ``async with`` (a framework's sync handlers, run in threads)."""
        if self._apool.opened is not None:
            self._pool.serve()
        return self._open(self._pool.ready(), "with")

    async def aready(self) -> AsyncConnectionPool[Any]:
        """`apool`, opened anew first in a process forked after the database was opened."""
        return self._open(await self._apool.aready(), "async with")

    def _open(self, pool: P | None, how: str) -> P:
        if pool is None:
            msg = f"{self.describe()} is not open for this kind of session; open it with `{how} Database(...)` first"
            raise NoSessionError(msg)
        return pool

    def open(self) -> None:
        """Open the pool of sync sessions, and the replica's."""
        self._pool.open()
        try:
            if self.replica is not None:
                self.replica.open()
        except BaseException:
            self._pool.close()
            raise

    def close(self) -> None:
        try:
            if self.replica is not None:
                self.replica.close()
        finally:
            self._pool.close()

    async def aopen(self) -> None:
        """Open the pool of async sessions, and the replica's."""
        self.is_async = True
        await self._apool.aopen()
        try:
            if self.replica is not None:
                await self.replica.aopen()
        except BaseException:
            await self._apool.aclose()
            raise

    async def aclose(self) -> None:
        try:
            if self.replica is not None:
                await self.replica.aclose()
        finally:
            await self._apool.aclose()
            # The pool of its sync sessions, if it opened one (closing waits for the pool's workers: a thread).
            if self._pool.opened is not None:
                await asyncio.to_thread(self._pool.close)
