"""Finding a connection pooler (PgBouncer, Supavisor, pgcat, ...) by what it does, and keeping psycopg's prepared
statements from reaching another client's server connection through it.

A transaction pooler hands each transaction of a client connection to any of its server connections, and answers
the startup itself: the backend key it gives the client (`ConnectionInfo.backend_pid`) is its own, not that of a
server backend. So a connection is behind a pooler when ``pg_backend_pid()`` differs from it. Port numbers prove
nothing (a pooler may listen on the server's port, on another host or socket directory).

Behind a pooler, psycopg's prepared statements (named ``_pg3_0``, ``_pg3_1``, ... on every connection) would
reach server connections that hold another client's statements of the same names: a call would run another
statement. They are turned off there unless the user says the pooler supports them (PgBouncer >= 1.22 with
``max_prepared_statements``, and libpq >= 17 for psycopg to deallocate through it); even then pgdecor starts each
connection's names at a random number, so a name reaching a server connection it was not prepared on is an error
("prepared statement does not exist"), never another statement's rows.
"""

from __future__ import annotations

import logging
import secrets
import weakref
from typing import Any

from psycopg.rows import tuple_row

__all__ = ["configure_async", "configure_sync", "probe_once_async", "probe_once_sync"]

logger = logging.getLogger("pgdecor")

PROBE = "SELECT pg_backend_pid()"
#: The probe and the idle-in-transaction backstop, in one round trip.
PROBE_WITH_TIMEOUT = "SELECT pg_backend_pid(), set_config('idle_in_transaction_session_timeout', %s, false)"

#: Connections pgdecor has probed, for sources whose connections it does not open itself.
_probed: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def behind_pooler(conn: Any, backend_pid: int) -> bool:
    """Whether *conn* reaches its server through a pooler, given the pid the server reports for it."""
    return bool(int(backend_pid) != conn.info.backend_pid)


def apply(conn: Any, pooler: bool, prepare: bool | None) -> None:
    """Set *conn*'s prepared statements for what was found: off behind a pooler (unless *prepare* is True) or when
    *prepare* is False; behind a pooler with *prepare* True, under names no other client uses."""
    _probed[conn] = pooler
    if prepare is False or (pooler and prepare is None):
        conn.prepare_threshold = None
        return
    if pooler:
        manager = getattr(conn, "_prepared", None)
        if isinstance(getattr(manager, "_prepared_idx", None), int):
            manager._prepared_idx = secrets.randbits(62)  # type: ignore[union-attr]
        else:  # this psycopg names its statements another way: do without them rather than risk it
            logger.warning("pgdecor: prepared statements turned off behind the pooler: cannot make their names unique")
            conn.prepare_threshold = None


def configure_sync(conn: Any, timeout: float | None = None, prepare: bool | None = None) -> bool:
    """Probe *conn* (in the round trip that sets the idle-in-transaction backstop, if *timeout* is given) and set
    its prepared statements for what was found (`apply`); return whether a pooler is in between."""
    cur = conn.cursor(row_factory=tuple_row)
    row = (cur.execute(PROBE) if timeout is None else cur.execute(PROBE_WITH_TIMEOUT, [_ms(timeout)])).fetchone()
    pooler = behind_pooler(conn, row[0])
    apply(conn, pooler, prepare)
    return pooler


async def configure_async(conn: Any, timeout: float | None = None, prepare: bool | None = None) -> bool:
    cur = conn.cursor(row_factory=tuple_row)
    row = await (
        await (cur.execute(PROBE) if timeout is None else cur.execute(PROBE_WITH_TIMEOUT, [_ms(timeout)]))
    ).fetchone()
    pooler = behind_pooler(conn, row[0])
    apply(conn, pooler, prepare)
    return pooler


def probe_once_sync(conn: Any) -> None:
    """Probe a connection pgdecor did not open (a pool or connection of the user's) the first time it sees it;
    prepared statements are turned off behind a pooler, as `Database` does with its default."""
    if conn not in _probed:
        configure_sync(conn)


async def probe_once_async(conn: Any) -> None:
    if conn not in _probed:
        await configure_async(conn)


def _ms(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms"
