# Generated from pgdecor/_sources/probe_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._sources.probe_async`, generated from it: see there."""

from __future__ import annotations

import selectors
from time import monotonic
from typing import Any

import psycopg
from psycopg import Connection, pq
from psycopg.rows import tuple_row

from pgdecor._plan.procedure import ProcedureCall
from pgdecor._rows.registry import DESCRIBE_QUERY, ServerKey, TypeRegistry
from pgdecor._wire import poolers

__all__ = ["check", "configure", "describe", "probe_once", "resolve"]

_FATAL = pq.ExecStatus.FATAL_ERROR


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
    pgconn = conn.pgconn
    try:
        pgconn.send_query(b"")
        while pgconn.flush():
            _ready(pgconn.socket, deadline, write=True)
        pgconn.consume_input()
        while pgconn.is_busy():
            _ready(pgconn.socket, deadline, write=False)
            pgconn.consume_input()
        _answered(pgconn)
    except BaseException:
        conn.close()
        raise


def _answered(pgconn: pq.abc.PGconn) -> None:
    """Read the answer to the check; raise if it is an error."""
    failed = None
    while (res := pgconn.get_result()) is not None:
        if res.status == _FATAL:
            failed = res.error_message
    if failed is not None:
        raise psycopg.OperationalError(failed.decode(errors="replace").strip())


def _ready(fd: int, deadline: float, *, write: bool) -> None:
    """Wait until the socket *fd* is readable (or writable); raise `ConnectionTimeout` at *deadline*."""
    timeout = max(deadline - monotonic(), 0.0)
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_WRITE if write else selectors.EVENT_READ)
        ready = bool(selector.select(timeout))
    if not ready:
        msg = "the server did not answer the connection's check in time"
        raise psycopg.errors.ConnectionTimeout(msg)


def describe(conn: Connection[Any], registry: TypeRegistry, oids: list[int]) -> None:
    """Describe *oids* (and the types they refer to) into *registry*."""
    while oids:
        oids = registry.add(_fetch(conn, DESCRIBE_QUERY, [oids]))


def resolve(conn: Connection[Any], key: ServerKey, call: ProcedureCall) -> None:
    """Learn from the catalog of the server *key* which function *call* is, unless it is known there already."""
    if call.needs_catalog(key):
        rows = _fetch(conn, *call.catalog_queries())
        call.resolve(key, rows, _fetch(conn, *call.types_query(rows)))
