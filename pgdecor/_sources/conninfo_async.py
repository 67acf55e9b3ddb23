"""The connection a session on a conninfo string opens for itself (and closes at its end). This is the async
source; `_sources.conninfo` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import math
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo

from pgdecor._errors import add_note

from . import probe_async as probe
from .config import IDLE_IN_TRANSACTION_TIMEOUT, network_defaults, unreachable

__all__ = ["DESCRIBED", "aconnected"]

#: A conninfo string, as messages name the source of its sessions (never the string itself: it may hold a password).
DESCRIBED = "a conninfo string"


async def aconnected(conninfo: str, timeout: float | None) -> AsyncConnection[Any]:
    """A new connection to *conninfo* (within *timeout* seconds, if given), in autocommit, with pgdecor's network
    settings and idle-in-transaction backstop; its failure noted with where it tried."""
    given = conninfo
    if timeout is not None:
        conninfo = make_conninfo(conninfo, connect_timeout=max(2, math.ceil(timeout)))  # libpq's least is 2
    try:
        conn = await AsyncConnection.connect(conninfo, autocommit=True, **network_defaults(conninfo, {}))
        await probe.configure(conn, IDLE_IN_TRANSACTION_TIMEOUT)
    except psycopg.OperationalError as err:  # no server there, or it refuses: say where, and what to check
        add_note(err, unreachable(DESCRIBED, given))
        raise
    return conn
