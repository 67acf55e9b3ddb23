"""The round trips pgdecor makes on its own, besides the calls of stubs: probing a connection for a pooler (with
the idle-in-transaction backstop), checking a connection a pool hands out under a deadline, describing types the
registry does not know, and reading the catalog to resolve a function. What is decided from the answers is in
`_wire.poolers`, `_rows.registry` and `_plan.procedure`.

This is the async source; `_sources.probe` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from pgdecor._plan.procedure import ProcedureCall
from pgdecor._rows.registry import DESCRIBE_QUERY, ServerKey, TypeRegistry
from pgdecor._wire import liveness_async as liveness
from pgdecor._wire import poolers

__all__ = ["check", "configure", "describe", "probe_once", "resolve"]


async def _fetch(conn: AsyncConnection[Any], query: Any, params: Any = None) -> list[tuple[Any, ...]]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, params)
    return await cur.fetchall()


async def configure(conn: AsyncConnection[Any], timeout: float | None = None, prepare: bool | None = None) -> bool:
    """Probe *conn* (in the round trip that sets the idle-in-transaction backstop, if *timeout* is given and no
    pooler is in between) and set its prepared statements for what was found (`poolers.apply`); return whether a
    pooler is in between."""
    if timeout is None:
        rows = await _fetch(conn, poolers.PROBE)
    else:
        rows = await _fetch(conn, poolers.PROBE_WITH_TIMEOUT, [conn.info.backend_pid, poolers.ms(timeout)])
    pooler = poolers.behind_pooler(conn, rows[0][0])
    poolers.apply(conn, pooler, prepare)
    return pooler


async def probe_once(conn: AsyncConnection[Any]) -> None:
    """Probe a connection pgdecor did not open (a pool or connection of the user's) the first time it sees it;
    prepared statements are turned off behind a pooler, as `Database` does with its default."""
    if not poolers.probed(conn):
        await configure(conn)


async def check(conn: AsyncConnection[Any], deadline: float) -> None:
    """Raise unless *conn* answers an empty query by *deadline* (a `time.monotonic` time); close it if it does not
    answer, or fails. A server that stops answering without closing anything (stopped, or the network to it gone
    quiet) would otherwise keep its caller waiting for as long as it stays so: psycopg's own waits have no
    deadline. Run on libpq itself: the connection is the pool's, used by no one else meanwhile."""
    try:
        await liveness.check(conn.pgconn, deadline)
    except BaseException:
        await conn.close()
        raise


async def describe(conn: AsyncConnection[Any], registry: TypeRegistry, oids: list[int]) -> None:
    """Describe *oids* (and the types they refer to) into *registry*."""
    while oids:
        oids = registry.add(await _fetch(conn, DESCRIBE_QUERY, [oids]))


async def resolve(conn: AsyncConnection[Any], key: ServerKey, call: ProcedureCall) -> None:
    """Learn from the catalog of the server *key* which function *call* is, unless it is known there already."""
    if call.needs_catalog(key):
        rows = await _fetch(conn, *call.catalog_queries())
        call.resolve(key, rows, await _fetch(conn, *call.types_query(rows)))
