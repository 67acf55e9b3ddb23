# Generated from pgdecor/_sources/user_objects_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._sources.user_objects_async`, generated from it: see there."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import Connection
from psycopg_pool import ConnectionPool

from pgdecor._counters import counters
from pgdecor._errors import add_note

from . import fork as forked
from .config import unreachable
from .guard import LeakGuard, pool_guard
from .lending import Lending

__all__ = ["ConnectionSource", "PoolSource"]


class PoolSource(Lending[ConnectionPool[Any]]):
    """A psycopg_pool pool of the user's: a connection is borrowed from it at a session's first call and given
    back at its end. Its sessions share one leak guard, whatever source object they were given through."""

    __slots__ = ()

    is_async = False

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        super().__init__(pool, pool_guard(pool, counters))

    def connect(self, timeout: float | None) -> Connection[Any]:
        pool = forked.own(self._given)
        try:
            conn: Connection[Any] = pool.getconn(timeout)
        except psycopg.OperationalError as err:  # no server there, or it refuses: say where, and what to check
            conninfo = pool.conninfo  # or a function that makes it
            add_note(err, unreachable(self.describe(), conninfo if isinstance(conninfo, str) else None))
            raise
        return conn

    def give_back(self, conn: Connection[Any]) -> None:
        self._given.putconn(conn)


class ConnectionSource(Lending[Connection[Any]]):
    """A psycopg connection of the user's: used as it is, inside a transaction or savepoint of its own, and left
    open."""

    __slots__ = ()

    is_async = False

    lent = True

    def __init__(self, conn: Connection[Any]) -> None:
        super().__init__(conn, LeakGuard(counters))

    def connect(self, timeout: float | None) -> Connection[Any]:  # noqa: ARG002 - there already
        return self._given

    def give_back(self, conn: Connection[Any]) -> None:
        pass  # the user's, to keep
