"""The user's own psycopg_pool pool, or psycopg connection, as the source of sessions of this kind (see
`_sources.lending`). This is the async source; `user_objects` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from pgdecor._counters import counters
from pgdecor._errors import add_note

from . import fork as forked
from .config import unreachable
from .guard import LeakGuard, pool_guard
from .lending import Lending

__all__ = ["AsyncConnectionSource", "AsyncPoolSource"]


class AsyncPoolSource(Lending[AsyncConnectionPool[Any]]):
    """A psycopg_pool pool of the user's: a connection is borrowed from it at a session's first call and given
    back at its end. Its sessions share one leak guard, whatever source object they were given through."""

    __slots__ = ()

    if True:  # ASYNC
        is_async = True
    else:
        is_async = False

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        super().__init__(pool, pool_guard(pool, counters))

    async def aconnect(self, timeout: float | None) -> AsyncConnection[Any]:
        pool = forked.own(self._given)
        try:
            conn: AsyncConnection[Any] = await pool.getconn(timeout)
        except psycopg.OperationalError as err:  # no server there, or it refuses: say where, and what to check
            conninfo = pool.conninfo  # or a function that makes it
            add_note(err, unreachable(self.describe(), conninfo if isinstance(conninfo, str) else None))
            raise
        return conn

    async def agive_back(self, conn: AsyncConnection[Any]) -> None:
        await self._given.putconn(conn)


class AsyncConnectionSource(Lending[AsyncConnection[Any]]):
    """A psycopg connection of the user's: used as it is, inside a transaction or savepoint of its own, and left
    open."""

    __slots__ = ()

    if True:  # ASYNC
        is_async = True
    else:
        is_async = False

    lent = True

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        super().__init__(conn, LeakGuard(counters))

    async def aconnect(self, timeout: float | None) -> AsyncConnection[Any]:  # noqa: ARG002 - there already
        return self._given

    async def agive_back(self, conn: AsyncConnection[Any]) -> None:
        pass  # the user's, to keep
