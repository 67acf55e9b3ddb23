"""Finding a connection pooler (PgBouncer, Supavisor, pgcat, ...) by what it does, and keeping psycopg's prepared
statements from reaching another client's server connection through it (the round trips: `_sources.probe_async`).

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

from psycopg import BaseConnection

from . import internals

__all__ = ["PROBE", "PROBE_WITH_TIMEOUT", "apply", "behind_pooler", "behind_pooler_seen", "ms", "probed"]

logger = logging.getLogger("pgdecor")

PROBE = "SELECT pg_catalog.pg_backend_pid()"
#: The probe and the idle-in-transaction backstop, in one round trip, given the backend pid the connection was
#: told and the timeout. The backstop is a setting of the server connection, which a pooler hands to other clients
#: (another application's transaction would be ended): it is set only where the server's pid is the connection's
#: own, so that behind a pooler pgdecor changes nothing that outlives its transactions.
PROBE_WITH_TIMEOUT = (
    "SELECT pg_catalog.pg_backend_pid(), CASE WHEN pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.=) "
    "%s::pg_catalog.int4 THEN pg_catalog.set_config('idle_in_transaction_session_timeout', %s, false) END"
)

#: Connections pgdecor has probed, for sources whose connections it does not open itself.
_probed: weakref.WeakKeyDictionary[BaseConnection[Any], bool] = weakref.WeakKeyDictionary()


def behind_pooler(conn: BaseConnection[Any], backend_pid: int) -> bool:
    """Whether *conn* reaches its server through a pooler, given the pid the server reports for it."""
    return bool(int(backend_pid) != conn.info.backend_pid)


def apply(conn: BaseConnection[Any], pooler: bool, prepare: bool | None) -> None:
    """Set *conn*'s prepared statements for what was found: off behind a pooler (unless *prepare* is True) or when
    *prepare* is False; behind a pooler with *prepare* True, under names no other client uses."""
    _probed[conn] = pooler
    if prepare is False or (pooler and prepare is None):
        conn.prepare_threshold = None
        return
    if pooler:
        try:
            manager = internals.prepare_manager(conn)
            if not isinstance(internals.prepared_index(manager), int):
                raise TypeError(f"{internals.PREPARED_INDEX} is no number")  # noqa: TRY301
            internals.set_prepared_index(manager, secrets.randbits(62))
        except Exception:  # noqa: BLE001 - this psycopg names its statements another way: do without them
            logger.warning("pgdecor: prepared statements turned off behind the pooler: cannot make their names unique")
            conn.prepare_threshold = None


def behind_pooler_seen(conn: BaseConnection[Any]) -> bool:
    """Whether pgdecor has found *conn* behind a pooler."""
    return _probed.get(conn) is True


def probed(conn: BaseConnection[Any]) -> bool:
    """Whether pgdecor has probed *conn* already (a connection of a source it does not open itself)."""
    return conn in _probed


def ms(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms"
