"""`Database`: the pool (and replica pool) a service opens once, and the counters of what its sessions did."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from typing_extensions import Self

from . import _fork as forked
from ._errors import NoSessionError
from ._poolers import configure_async, configure_sync

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["IDLE_IN_TRANSACTION_TIMEOUT", "Counters", "Database", "counters"]

#: Seconds after which the server ends a backend left idle in a transaction, on the connections pgdecor opens
#: itself (conninfo-string sessions; `Database` takes its own value). A backstop, should a leak escape the guard.
IDLE_IN_TRANSACTION_TIMEOUT = 60.0


@dataclass
class Counters:
    """What sessions did with their connections. ``borrowed == released`` once every session has ended, and
    ``released == committed + rolled_back``; ``leaked`` counts sessions the leak guard had to end."""

    borrowed: int = 0
    released: int = 0
    committed: int = 0
    rolled_back: int = 0
    leaked: int = 0
    _parent: Counters | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)
        if self._parent is not None:
            self._parent.add(name)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {k: getattr(self, k) for k in ("borrowed", "released", "committed", "rolled_back", "leaked")}


#: The counters of every session in the process (each `Database` also has its own).
counters = Counters()


def counters_for(source: object) -> Counters:
    return source.counters if isinstance(source, Database) else counters


class Database:
    """A connection pool for a service, opened with ``with`` (or ``async with``), and the source of its sessions.

    ::

        with Database("postgresql:///app", max_size=20) as db:
            with db.session():
                user = get_user(1)

    *replica*, a conninfo, gets a pool of its own, where ``readonly=True`` stubs run (see `session`).
    Connections are autocommit between sessions, carry ``idle_in_transaction_session_timeout`` (a backstop;
    None leaves the server's setting), and are checked when borrowed, so a connection the server closed is
    replaced rather than handed out. A session that holds a connection after its thread or task has ended, or
    (with *leak_timeout*, default the idle timeout) idle in transaction that long, is ended by the leak guard
    when another session borrows: rolled back, given back, and reported with a `ResourceWarning`.

    *prepare*: psycopg prepares statements a connection repeats. Behind a transaction pooler that cannot keep
    them (PgBouncer before 1.22, or without ``max_prepared_statements``) they would reach other clients' server
    connections; with the default None, pgdecor turns them off on each connection it finds behind a pooler (the
    backend pid the server reports differs from the one the connection was given; ``db.pooler`` says what it
    found). Say True for a pooler that supports them (their names are then unique to each connection, so a
    pooler that does not is an error, never a wrong result), False to turn them off everywhere.

    Fork-safe: in a process forked after the database was opened (``gunicorn --preload``, multiprocessing), the
    pool is opened anew at its first use, and the parent's connections are never used or closed there.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        replica: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        idle_in_transaction_timeout: float | None = IDLE_IN_TRANSACTION_TIMEOUT,
        leak_timeout: float | None = -1.0,
        prepare: bool | None = None,
        check: bool = True,
        **kwargs: Any,
    ) -> None:
        self.conninfo = conninfo
        self.min_size, self.max_size, self.timeout = min_size, max_size, timeout
        self.idle_in_transaction_timeout = idle_in_transaction_timeout
        self.leak_timeout = idle_in_transaction_timeout if leak_timeout == -1.0 else leak_timeout
        self.prepare = prepare
        self.check = check
        self.kwargs = kwargs
        self.counters = Counters(_parent=counters)
        self.replica = (
            None
            if replica is None
            else Database(
                replica,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                idle_in_transaction_timeout=idle_in_transaction_timeout,
                leak_timeout=leak_timeout,
                prepare=prepare,
                check=check,
                **kwargs,
            )
        )
        self.is_async = False
        #: Whether the last connection configured was behind a pooler (None: none configured yet).
        self.pooler: bool | None = None
        self._pool: ConnectionPool[Any] | None = None
        self._apool: AsyncConnectionPool[Any] | None = None
        #: The process that opened the pool: a forked child opens its own (see `_fork`).
        self._pid = 0
        self._reopen_lock = threading.Lock()
        self._areopen_lock: tuple[int, asyncio.Lock] | None = None

    def __repr__(self) -> str:
        info = conninfo_to_dict(self.conninfo)
        where = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/{info.get('dbname') or ''}"
        state = "open" if self._pool or self._apool else "closed"
        return f"<pgdecor Database {where} ({'async, ' if self.is_async else ''}{state})>"

    def session(self) -> Session:
        """A session on this database: the same as ``session(db)``."""
        from ._session import Session  # noqa: PLC0415 - _session imports this module

        caller = sys._getframe(1)
        return Session(self, None, f"{caller.f_code.co_filename}:{caller.f_lineno}")

    @property
    def pool(self) -> ConnectionPool[Any]:
        """The psycopg_pool pool, while the database is open with ``with`` (opened anew in a forked child)."""
        if self._pool is None:
            raise NoSessionError(self._closed_message("with"))
        if self._pid != os.getpid():
            with self._reopen_lock:
                if self._pid != os.getpid():
                    forked.inherit(self._pool)
                    self._pool = self._open_pool()
                    self._pid = os.getpid()  # after: other threads wait for the new pool
        return self._pool

    @property
    def apool(self) -> AsyncConnectionPool[Any]:
        """The async psycopg_pool pool, while the database is open with ``async with``."""
        if self._apool is None:
            raise NoSessionError(self._closed_message("async with"))
        return self._apool

    async def aready(self) -> AsyncConnectionPool[Any]:
        """`apool`, opened anew first in a process forked after the database was opened."""
        pool = self.apool
        pid = os.getpid()
        if self._pid == pid:
            return pool
        if self._areopen_lock is None or self._areopen_lock[0] != pid:
            self._areopen_lock = (pid, asyncio.Lock())
        async with self._areopen_lock[1]:
            if self._pid != pid:
                forked.inherit(pool)
                new = self._new_apool()
                await new.open(wait=self.min_size > 0, timeout=self.timeout)
                self._apool, self._pid = new, pid
        return self.apool

    def _closed_message(self, how: str) -> str:
        return f"{self!r} is not open for this kind of session; open it with `{how} Database(...)` first"

    def reap(self) -> int:
        """End the sessions the leak guard finds orphaned now (it also looks at every borrow); return how many."""
        from ._leaks import reap_sync  # noqa: PLC0415 - _leaks imports this module

        return reap_sync(self)

    async def areap(self) -> int:
        from ._leaks import reap_async  # noqa: PLC0415 - as above

        return await reap_async(self)

    def _pool_kwargs(self) -> dict[str, Any]:
        return {
            "min_size": self.min_size,
            "max_size": self.max_size,
            "timeout": self.timeout,
            "kwargs": {"autocommit": True, **self.kwargs},
            "open": False,
        }

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        self.pooler = configure_sync(conn, self.idle_in_transaction_timeout, self.prepare)

    async def _aconfigure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.pooler = await configure_async(conn, self.idle_in_transaction_timeout, self.prepare)

    def _new_apool(self) -> AsyncConnectionPool[Any]:
        check = AsyncConnectionPool.check_connection if self.check else None
        return AsyncConnectionPool(self.conninfo, configure=self._aconfigure, check=check, **self._pool_kwargs())

    def _open_pool(self) -> ConnectionPool[Any]:
        check = ConnectionPool.check_connection if self.check else None
        pool = ConnectionPool(self.conninfo, configure=self._configure, check=check, **self._pool_kwargs())
        try:
            pool.open(wait=self.min_size > 0, timeout=self.timeout)
        except BaseException:
            pool.close()
            raise
        return pool

    def __enter__(self) -> Self:
        self._pool = self._open_pool()
        self._pid = os.getpid()
        try:
            if self.replica is not None:
                self.replica.__enter__()
        except BaseException:
            self._pool.close()
            self._pool = None
            raise
        forked.track(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pool, self._pool = self._pool, None
        try:
            if self.replica is not None:
                self.replica.__exit__(exc_type, exc, tb)
        finally:
            if pool is not None and not forked.inherited(pool):
                pool.close()

    async def __aenter__(self) -> Self:
        self.is_async = True
        self._pid = os.getpid()
        self._apool = self._new_apool()
        forked.track(self)
        try:
            await self._apool.open(wait=self.min_size > 0, timeout=self.timeout)
            if self.replica is not None:
                await self.replica.__aenter__()
        except BaseException:
            await self._apool.close()
            self._apool = None
            raise
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
