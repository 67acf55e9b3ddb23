"""The round trips pgdecor makes on its own, besides the calls of stubs: probing a connection for a pooler (with
the idle-in-transaction backstop), describing types the registry does not know, and reading the catalog to
resolve a function. What is decided from the answers is in `_poolers`, `_registry` and `_calls`.

This is the async source; `_probe` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from . import _poolers as poolers
from ._calls import ProcedureCall
from ._registry import DESCRIBE_QUERY, ServerKey, TypeRegistry

__all__ = ["configure", "describe", "probe_once", "resolve"]


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


async def describe(conn: AsyncConnection[Any], registry: TypeRegistry, oids: list[int]) -> None:
    """Describe *oids* (and the types they refer to) into *registry*."""
    while oids:
        oids = registry.add(await _fetch(conn, DESCRIBE_QUERY, [oids]))


async def resolve(conn: AsyncConnection[Any], key: ServerKey, call: ProcedureCall) -> None:
    """Learn from the catalog of the server *key* which function *call* is, unless it is known there already."""
    if call.needs_catalog(key):
        rows = await _fetch(conn, *call.catalog_queries())
        call.resolve(key, rows, await _fetch(conn, *call.types_query(rows)))
