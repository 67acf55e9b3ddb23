"""`Database`: the pool (and replica pool) a service opens once, the source of its sessions."""

from __future__ import annotations

import sys

from . import _lease as lease
from . import _lease_async as lease_async
from ._pools import Pools
from ._pools_async import AsyncPools
from ._session import Session, open_session

__all__ = ["Database"]


class Database(Pools, AsyncPools):
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

    def session(self) -> Session:
        """A session on this database: the same as ``session(db)``."""
        caller = sys._getframe(1)
        return open_session("Database.session()", self, None, f"{caller.f_code.co_filename}:{caller.f_lineno}")

    def reap(self) -> int:
        """End the sessions the leak guard finds orphaned now (it also looks at every borrow); return how many."""
        return lease.reap(self)

    async def areap(self) -> int:
        return await lease_async.reap(self)
