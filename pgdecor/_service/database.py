"""`Database`: the pool (and replica pool) a service opens once, the source of its sessions."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from psycopg import IsolationLevel
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from typing_extensions import Self

from pgdecor._counters import Counters
from pgdecor._session import scope, scope_async
from pgdecor._session.api import Session, open_session
from pgdecor._session.modes import Isolation, mode
from pgdecor._sources.config import DatabaseConfig
from pgdecor._sources.database import DatabaseSource
from pgdecor._sources.replicas import Health

from .retry import run_unit
from .retry_async import arun_unit
from .retry_policy import Retry, retry_policy

__all__ = ["Database"]

T = TypeVar("T")


class Database(DatabaseConfig):
    """A connection pool for a service, opened with ``with`` (or ``async with``), and the source of its sessions.

    ::

        with Database("postgresql:///app", max_size=20) as db:
            with db.session():
                user = get_user(1)

    *replica*, a conninfo, gets a pool of its own, where ``readonly=True`` stubs run (see `session`). A session
    given the `Session.commit_token` of an earlier one (``db.session(after=token)``) reads there only once the
    replica has replayed that far, waiting up to *replica_wait* seconds, and from the primary after that.
    Connections are autocommit between sessions, carry ``idle_in_transaction_session_timeout`` (a backstop;
    None leaves the server's setting; not set behind a pooler, whose server connections other clients share), and
    are checked when borrowed, so a connection the server closed is replaced rather than handed out (one given back
    moments ago, its socket quiet, by the answer to the BEGIN sent with its session's first call: see
    `_wire.owed`).

    *timeout* (seconds, 30 by default) bounds the waits for a connection: a borrow waits that long at most, the
    check included (a connection whose server does not answer by then is closed, and `psycopg_pool.PoolTimeout`
    raised), and opening the database connects once first, within it (libpq's ``connect_timeout``, 2 s at the
    least, unless the conninfo gives one): a server that refuses, an unknown host, or a failed authentication
    raises `UnreachableError` at once, with the server's reason and the conninfo's password masked. It does not
    bound calls: a stub's ``timeout=`` and a session's ``deadline=`` do. Every option is checked when the
    database is made: a wrong type or value raises `ArgumentError` naming it.

    Connections carry TCP keepalives (``keepalives_idle=30``, ``keepalives_interval=10``, ``keepalives_count=3``)
    and ``tcp_user_timeout=60000`` unless the conninfo or the keyword arguments give them. A session that holds a
    connection after its thread or task has ended, or (with *leak_timeout*, default the idle timeout) idle in
    transaction that long, is ended by the leak guard when another session borrows: rolled back, given back, and
    reported with a `ResourceWarning`.

    *prepare*: psycopg prepares statements a connection repeats. Behind a transaction pooler that cannot keep
    them (PgBouncer before 1.22, or without ``max_prepared_statements``) they would reach other clients' server
    connections; with the default None, pgdecor turns them off on each connection it finds behind a pooler (the
    backend pid the server reports differs from the one the connection was given; ``db.pooler`` says what it
    found). Say True for a pooler that supports them (their names are then unique to each connection, so a
    pooler that does not is an error, never a wrong result), False to turn them off everywhere.

    Fork-safe: in a process forked after the database was opened (``gunicorn --preload``, multiprocessing), the
    pool is opened anew at its first use, and the parent's connections are never used or closed there.
    """

    _source: DatabaseSource

    def _made(self) -> DatabaseSource:
        """The database's source (see `_sources.database`), made of its options."""
        replica = None if self.replica is None else self.replica._source
        return DatabaseSource(self._pools(), self._settings(), self.leak_timeout, replica)

    def __repr__(self) -> str:
        return self._source.describe()

    def __enter__(self) -> Self:
        self._source.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._source.close()

    async def __aenter__(self) -> Self:
        await self._source.aopen()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._source.aclose()

    @property
    def pool(self) -> ConnectionPool[Any]:
        """The psycopg_pool pool of its sync sessions, while the database is open for them."""
        return self._source.pool

    @property
    def apool(self) -> AsyncConnectionPool[Any]:
        """The psycopg_pool pool of its async sessions, while the database is open with ``async with``."""
        return self._source.apool

    def ready(self) -> ConnectionPool[Any]:
        """`pool`, opened anew first in a process forked after the database was opened."""
        return self._source.ready()

    async def aready(self) -> AsyncConnectionPool[Any]:
        """`apool`, opened anew first in a process forked after the database was opened."""
        return await self._source.aready()

    @property
    def counters(self) -> Counters:
        """What the database's sessions did with its connections (see `pgdecor.Counters`)."""
        return self._source.counters

    @property
    def pooler(self) -> bool | None:
        """Whether the last connection it configured was behind a pooler (None: none configured yet)."""
        return self._source.pooler

    @property
    def health(self) -> Health:
        """Whether the database, as a replica, can be reached (see `Database(replica=...)`)."""
        return self._source.health

    def session(
        self,
        *,
        isolation: Isolation | IsolationLevel | None = None,
        readonly: bool = False,
        autocommit: bool = False,
        after: str | None = None,
        deadline: float | None = None,
    ) -> Session:
        """A session on this database: the same as ``session(db, ...)``."""
        caller = sys._getframe(1)
        where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
        chosen = mode("Database.session()", isolation, readonly, autocommit)
        return open_session("Database.session()", self, None, where, chosen, after=after, deadline=deadline)

    def run(
        self,
        fn: Callable[..., T],
        /,
        *args: Any,
        retry: Retry | int = 3,
        isolation: Isolation | IsolationLevel | None = None,
        readonly: bool = False,
        **kwargs: Any,
    ) -> T:
        """Run ``fn(*args, **kwargs)`` as one session of this database, begun with *isolation* and *readonly*, and
        again from its start, in a new session, while it fails in a way *retry* allows (a `Retry`, or a number of
        retries: by default 3, on serialization failures and deadlocks); return what it returns. The last error is
        raised with a note for each run. `retried` is the decorator form."""
        what = "Database.run()"
        policy, chosen = retry_policy(what, retry), mode(what, isolation, readonly, False)
        caller = sys._getframe(1)
        where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
        return run_unit(what, self, fn, args, kwargs, policy=policy, chosen=chosen, opened_at=where)

    async def arun(
        self,
        fn: Callable[..., Awaitable[T]],
        /,
        *args: Any,
        retry: Retry | int = 3,
        isolation: Isolation | IsolationLevel | None = None,
        readonly: bool = False,
        **kwargs: Any,
    ) -> T:
        """`run` for an async function, in an async session."""
        what = "Database.arun()"
        policy, chosen = retry_policy(what, retry), mode(what, isolation, readonly, False)
        caller = sys._getframe(1)
        where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
        return await arun_unit(what, self, fn, args, kwargs, policy=policy, chosen=chosen, opened_at=where)

    def reap(self) -> int:
        """End the sync sessions the leak guard finds orphaned now (it also looks at every borrow); return how
        many."""
        return scope.reap(self._source)

    async def areap(self) -> int:
        """`reap` for async sessions."""
        return await scope_async.areap(self._source)
