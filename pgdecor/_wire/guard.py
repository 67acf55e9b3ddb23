"""What keeps the lean call path (`_wire.wire`) honest: the switch that turns every wire off for the process when a
part of psycopg it uses beyond psycopg's documented API (`_wire.internals`) is missing, or raises or answers in another
shape (`Drift`), when ``PGDECOR_WIRE=off`` is in the environment, or when a wire's self-test (`Wire.self_test`)
finds that it would not do what psycopg does; and what that self-test runs and compares.
"""

from __future__ import annotations

import logging
import os
import sys
import weakref
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection, BaseConnection, Connection, pq

from pgdecor._counters import counters

from . import internals
from .internals import CopyFormats

__all__ = ["CopyFormats", "copy_formats", "drifted", "look_up", "switch", "usable"]

logger = logging.getLogger("pgdecor")

_OFF = pq.PipelineStatus.OFF


class _Switch:
    """Whether wires are used in this process: not where psycopg lacks what they use, not with ``PGDECOR_WIRE=off``
    in the environment, and no more once a wire's self-test has failed (see `Wire.self_test`)."""

    on = sys.platform != "win32" and os.environ.get("PGDECOR_WIRE", "").lower() not in ("0", "off", "no", "false")
    #: Why wires were turned off, if they were.
    reason: str | None = None


switch = _Switch()

#: The connections whose wire has passed its self-test.
_tested: weakref.WeakSet[BaseConnection[Any]] = weakref.WeakSet()

# Operators and types named with their schema, whatever the search_path (a look-alike there never runs instead).
_PREPARED_BY_NAME = "SELECT 1 FROM pg_catalog.pg_prepared_statements WHERE name OPERATOR(pg_catalog.=) %s"

#: The statement of the self-test, and its arguments: a value of a type psycopg sends in binary, one in text.
_PROBE = "SELECT %s::pg_catalog.int8 AS pgdecor_wire_probe, %s::pg_catalog.text AS t"
_PROBE_ARGS = (4_611_686_018_427_387_904, "pgdecor wire \u2713")


def usable(conn: Connection[Any] | AsyncConnection[Any]) -> bool:
    """Whether calls on *conn* can go through a wire now (not while the user runs a pipeline on it, nor when a
    tool wraps psycopg's cursors: tracing, query logging and comments see every call only through cursors)."""
    return switch.on and conn.pgconn.pipeline_status == _OFF and conn.cursor_factory in _PLAIN_CURSORS


_PLAIN_CURSORS = (psycopg.Cursor, psycopg.AsyncCursor)


def _probe_result(res: pq.abc.PGresult | None, rows: Sequence[object]) -> tuple[object, ...]:
    """What the self-test compares: the probe's column types and its rows."""
    return () if res is None else tuple(res.ftype(i) for i in range(res.nfields)), rows


def _self_test_problem(expected: tuple[object, ...], got: tuple[object, ...] | None) -> str | None:
    if got is None:
        return "psycopg prepared the probe statement, but the wire does not find it as psycopg names it"
    if got != expected:
        return f"the probe statement's result differs from the cursor's: {got!r}, not {expected!r}"
    return None


def _turn_off(reason: str) -> None:
    """A wire would not do what psycopg does (its self-test says so, or a private of psycopg it uses has changed):
    every call goes through cursors from now on."""
    if switch.on:
        switch.on = False
        switch.reason = reason
        counters.add("wire_disabled")
        logger.warning("pgdecor: calls go through psycopg's cursors from now on: %s", reason)


def drifted(err: internals.Drift) -> None:
    """A private of psycopg that wires use raised, or answered in a shape they do not know: wires off, naming it."""
    _turn_off(f"psycopg {psycopg.__version__}'s {err}")


def look_up() -> None:
    """Look psycopg's privates up (`_wire.internals.look_up`); wires off, with one WARNING naming it, if one is missing.
    Run at import (and again by the tests that simulate a psycopg without one)."""
    if internals.look_up() is not None:
        _turn_off(f"psycopg {psycopg.__version__} has no {internals.missing}")


if internals.missing is not None:
    _turn_off(f"psycopg {psycopg.__version__} has no {internals.missing}")


def copy_formats() -> CopyFormats | None:
    """What COPY stubs write and read whole batches of rows with; None where this psycopg lacks it, or wires are
    off (then they go through psycopg's public row methods, `Copy.write_row`, and parse rows by themselves)."""
    return internals.copy_formats if switch.on else None
