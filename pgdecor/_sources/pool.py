# Generated from pgdecor/_sources/pool_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._sources.pool_async`, generated from it: see there."""

from __future__ import annotations

import os
from time import monotonic
from types import TracebackType
from typing import Any

import psycopg
from psycopg import Connection
from psycopg_pool import ConnectionPool, PoolTimeout
from typing_extensions import Self

from pgdecor._errors import NoSessionError, add_note

from . import fork as forked
from . import probe
from .config import BORROW_DEADLINE, CHECK_GRACE, DatabaseBase, network_defaults

__all__ = ["Pools"]


class Pools(DatabaseBase):
    """`Database`'s pool of this kind (see `pgdecor.Database`)."""

    @property
    def pool(self) -> ConnectionPool[Any]:
        """The psycopg_pool pool, while the database is open (in a forked child, it is opened anew by the first
        session, or by `ready`)."""
        if self._pool is None:
            how = "with"
            raise NoSessionError(self._closed_message(how))
        return self._pool

    def ready(self) -> ConnectionPool[Any]:
        """`pool`, opened anew first in a process forked after the database was opened."""
        self._serve_sync_sessions()
        pool = self.pool
        if self._pid == os.getpid():
            return pool
        with self._reopening():
            if self._pid != os.getpid():
                forked.inherit(pool)
                self._pool = self._open_pool()
                self._pid = os.getpid()  # after: others wait for the new pool
        return self.pool

    def _getconn(self, timeout: float | None = None) -> Connection[Any]:
        """A connection from the pool (opened anew first in a forked child), within `timeout` seconds in all (or
        *timeout*, if shorter), the check of the connection included; a `PoolTimeout` says why there was none."""
        started = monotonic()
        bound = self.timeout if timeout is None else min(timeout, self.timeout)
        token = BORROW_DEADLINE.set(started + bound)
        try:
            conn: Connection[Any] = (self.ready()).getconn(bound)
        except PoolTimeout as err:
            add_note(err, self._timed_out(started))
            raise
        finally:
            BORROW_DEADLINE.reset(token)
        return conn

    def _check_borrowed(self, conn: Connection[Any]) -> None:
        """The pool's check of a connection it hands out: answered by the deadline of the borrow (`timeout` from
        now, for a borrow from the pool itself), `CHECK_GRACE` at the least; closed, and the pool tries another,
        if not."""
        now = monotonic()
        deadline = BORROW_DEADLINE.get() or now + self.timeout
        try:
            # To its end even if the borrower is cancelled meanwhile (a request whose client hung up): cut short, it
            # would leave the connection busy, for the pool to throw away and replace.
            probe.check(conn, max(deadline, now + CHECK_GRACE))
        except psycopg.errors.ConnectionTimeout:
            self._unanswered_at = monotonic()
            raise

    def _reach(self) -> None:
        """Connect once, and close: a server that cannot be reached (none there, an unknown host, a refusal) is an
        `UnreachableError` at once, not a pool's retries for `timeout` seconds."""
        kwargs = {"autocommit": True, **network_defaults(self.conninfo, self.kwargs), **self.kwargs}
        try:
            conn = Connection.connect(self._first_conninfo(), **kwargs)
        except psycopg.OperationalError as err:
            raise self._unreachable(err) from None  # libpq's words, scrubbed, are in the message
        conn.close()

    def _open_pool(self) -> ConnectionPool[Any]:
        self._reach()
        check = self._check_borrowed if self.check else None
        pool = ConnectionPool(self.conninfo, configure=self._configure, check=check, **self._pool_kwargs())
        try:
            pool.open(wait=self.min_size > 0, timeout=self.timeout)
        except BaseException:
            pool.close()
            raise
        return pool

    def _configure(self, conn: Connection[Any]) -> None:
        self.pooler = probe.configure(conn, self.idle_in_transaction_timeout, self.prepare)

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
