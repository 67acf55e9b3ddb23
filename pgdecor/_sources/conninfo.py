# Generated from pgdecor/_sources/conninfo_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._sources.conninfo_async`, generated from it: see there."""

from __future__ import annotations

import math
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.conninfo import make_conninfo

from pgdecor._errors import add_note

from . import probe
from .config import IDLE_IN_TRANSACTION_TIMEOUT, network_defaults, unreachable

__all__ = ["DESCRIBED", "connected"]

#: A conninfo string, as messages name the source of its sessions (never the string itself: it may hold a password).
DESCRIBED = "a conninfo string"


def connected(conninfo: str, timeout: float | None) -> Connection[Any]:
    """A new connection to *conninfo* (within *timeout* seconds, if given), in autocommit, with pgdecor's network
    settings and idle-in-transaction backstop; its failure noted with where it tried."""
    given = conninfo
    if timeout is not None:
        conninfo = make_conninfo(conninfo, connect_timeout=max(2, math.ceil(timeout)))  # libpq's least is 2
    try:
        conn = Connection.connect(conninfo, autocommit=True, **network_defaults(conninfo, {}))
        probe.configure(conn, IDLE_IN_TRANSACTION_TIMEOUT)
    except psycopg.OperationalError as err:  # no server there, or it refuses: say where, and what to check
        add_note(err, unreachable(DESCRIBED, given))
        raise
    return conn
