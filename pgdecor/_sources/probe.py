# Generated from pgdecor/_sources/probe_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._sources.probe_async`, generated from it: see there."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import tuple_row

from pgdecor._plan.procedure import ProcedureCall
from pgdecor._rows.registry import DESCRIBE_QUERY, ServerKey, TypeRegistry
from pgdecor._wire import liveness, poolers

__all__ = ["check", "configure", "describe", "probe_once", "resolve"]


def _fetch(conn: Connection[Any], query: Any, params: Any = None) -> list[tuple[Any, ...]]:
    cur = conn.cursor(row_factory=tuple_row)
    cur.execute(query, params)
    return cur.fetchall()


def configure(conn: Connection[Any], timeout: float | None = None, prepare: bool | None = None) -> bool:
    """Probe *conn* (in the round trip that sets the idle-in-transaction backstop, if *timeout* is given and no
    pooler is in between) and set its prepared statements for what was found (`poolers.apply`); return whether a
    pooler is in between."""
    if timeout is None:
        rows = _fetch(conn, poolers.PROBE)
    else:
        rows = _fetch(conn, poolers.PROBE_WITH_TIMEOUT, [conn.info.backend_pid, poolers.ms(timeout)])
    pooler = poolers.behind_pooler(conn, rows[0][0])
    poolers.apply(conn, pooler, prepare)
    return pooler


def probe_once(conn: Connection[Any]) -> None:
    """Probe a connection pgdecor did not open (a pool or connection of the user's) the first time it sees it;
    prepared statements are turned off behind a pooler, as `Database` does with its default."""
    if not poolers.probed(conn):
        configure(conn)


def check(conn: Connection[Any], deadline: float) -> None:
    """Raise unless *conn* answers an empty query by *deadline* (a `time.monotonic` time); close it if it does not
    answer, or fails. A server that stops answering without closing anything (stopped, or the network to it gone
    quiet) would otherwise keep its caller waiting for as long as it stays so: psycopg's own waits have no
    deadline. Run on libpq itself: the connection is the pool's, used by no one else meanwhile."""
    try:
        liveness.check(conn.pgconn, deadline)
    except BaseException:
        conn.close()
        raise


def describe(conn: Connection[Any], registry: TypeRegistry, oids: list[int]) -> None:
    """Describe *oids* (and the types they refer to) into *registry*."""
    while oids:
        oids = registry.add(_fetch(conn, DESCRIBE_QUERY, [oids]))


def resolve(conn: Connection[Any], key: ServerKey, call: ProcedureCall) -> None:
    """Learn from the catalog of the server *key* which function *call* is, unless it is known there already."""
    if call.needs_catalog(key):
        rows = _fetch(conn, *call.catalog_queries())
        call.resolve(key, rows, _fetch(conn, *call.types_query(rows)))
