"""What keeps the lean call path (`_wire`) honest: the parts of psycopg it uses beyond psycopg's documented API,
looked up at import, and the switch that turns every wire off for the process when they are missing, when
``PGDECOR_WIRE=off`` is in the environment, or when a wire's self-test (`Wire.self_test`) finds that it would not
do what psycopg does; and what that self-test runs and compares.
"""

from __future__ import annotations

import logging
import os
import sys
import weakref
from collections.abc import Awaitable, Callable, Sequence
from types import SimpleNamespace
from typing import Any, NamedTuple

import psycopg
from psycopg import AsyncConnection, Connection, pq
from psycopg.adapt import PyFormat

from ._counters import counters

__all__ = ["CopyFormats", "copy_formats", "switch", "usable"]

logger = logging.getLogger("pgdecor")

_OFF = pq.PipelineStatus.OFF

#: psycopg's placeholder conversion (%s, %(name)s, %b, %t → $n, cached), so that both paths read SQL alike and
#: key prepared statements alike; its generator that flushes a query and reads every result (in C), and the async
#: wait that drives it on the connection's own socket (to read what remains of a cancelled statement).
_query2pg: Callable[[bytes, str], tuple[bytes, list[PyFormat], Any, Any]]
_execute: Callable[[pq.abc.PGconn], Any]
_wait_async: Callable[[Any, int], Awaitable[Any]]
_YES: Any = None
_NO: Any = None
_SHOULD: Any = None
try:
    from psycopg import _preparing, _queries, generators, waiting

    _query2pg = _queries._query2pg
    _execute = generators.execute
    _wait_async = waiting.wait_async
    _YES, _NO, _SHOULD = _preparing.Prepare.YES, _preparing.Prepare.NO, _preparing.Prepare.SHOULD
    #: What a generator driven by the connection's wait yields, and is sent back.
    _WAIT_R, _WAIT_W, _WAIT_RW = int(waiting.Wait.R), int(waiting.Wait.W), int(waiting.Wait.RW)
    _READY_R, _READY_W = int(waiting.Ready.R), int(waiting.Ready.W)
    _manager = _preparing.PrepareManager
    #: Whether this psycopg has what wires use; if not, every call goes through a cursor.
    _available = (
        callable(getattr(Connection, "wait", None))
        and isinstance(_manager()._names, dict)
        and all(callable(getattr(_manager, name, None)) for name in ("get", "maybe_add_to_cache", "validate"))
    )
except (ImportError, AttributeError):  # pragma: no cover - depends on psycopg
    _available = False
if sys.platform == "win32":  # pragma: no cover - a duplicated socket handle cannot be watched there
    _available = False


def lru_is_a_move() -> bool:
    """Whether psycopg's prepare manager, told of one more execution of a statement it has prepared, only moves it
    to the recent end of its LRU order and asks for no ``validate``: then a wire does just that, in one step,
    instead of asking it (`Wire._made`). Found out by what a manager of its own does, never assumed: where it does
    anything else, wires ask psycopg's manager every time."""
    try:
        told, moved = _manager(), _manager()
        first: Any = SimpleNamespace(query=b"SELECT 1", types=())  # what the manager keys a statement by
        second: Any = SimpleNamespace(query=b"SELECT 2", types=(23,))
        for manager in (told, moved):
            for query, name in ((first, b"_pg3_0"), (second, b"_pg3_1")):
                manager.maybe_add_to_cache(query, _SHOULD, name)
        answer = told.maybe_add_to_cache(first, _YES, b"_pg3_0")
        moved._names.move_to_end(_manager.key(first))
        same = [list(told._names.items()), list(told._counts.items()), list(told._to_flush)] == [
            list(moved._names.items()),
            list(moved._counts.items()),
            list(moved._to_flush),
        ]
    except Exception:  # noqa: BLE001 - any change in psycopg's manager: ask it every time
        return False
    return answer is None and same and len(told._names) == 2


#: Whether wires keep psycopg's LRU order by moving a statement they run to its recent end (`lru_is_a_move`).
LRU_IS_A_MOVE = _available and lru_is_a_move()


class _Switch:
    """Whether wires are used in this process: not where psycopg lacks what they use, not with ``PGDECOR_WIRE=off``
    in the environment, and no more once a wire's self-test has failed (see `Wire.self_test`)."""

    on = _available and os.environ.get("PGDECOR_WIRE", "").lower() not in ("0", "off", "no", "false")
    #: Why the self-test turned wires off, if it did.
    reason: str | None = None


switch = _Switch()

#: The connections whose wire has passed its self-test.
_tested: weakref.WeakSet[Any] = weakref.WeakSet()

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


def _probe_result(res: pq.abc.PGresult, rows: list[Any]) -> tuple[Any, ...]:
    """What the self-test compares: the probe's column types and its rows."""
    return tuple(res.ftype(i) for i in range(res.nfields)), rows


def _self_test_problem(expected: tuple[Any, ...], got: tuple[Any, ...] | None) -> str | None:
    if got is None:
        return "psycopg prepared the probe statement, but the wire does not find it as psycopg names it"
    if got != expected:
        return f"the probe statement's result differs from the cursor's: {got!r}, not {expected!r}"
    return None


def _turn_off(reason: str) -> None:
    """A wire's self-test found it would not do what psycopg does: every call goes through cursors from now on."""
    if switch.on:
        switch.on = False
        switch.reason = reason
        counters.add("wire_disabled")
        logger.warning("pgdecor: calls go through psycopg's cursors from now on: %s", reason)


class CopyFormats(NamedTuple):
    """psycopg's COPY row formats (in C where psycopg is built with it): a row of values into COPY data, binary or
    text, appended to a buffer; and a row of COPY data into values."""

    format_binary: Callable[[Sequence[Any], Any, bytearray], None]
    format_text: Callable[[Sequence[Any], Any, bytearray], None]
    parse_binary: Callable[[Any, Any], tuple[Any, ...]]
    parse_text: Callable[[Any, Any], tuple[Any, ...]]


_copy_formats: CopyFormats | None
try:
    from psycopg import _copy_base

    _copy_formats = CopyFormats(
        _copy_base.format_row_binary,
        _copy_base.format_row_text,
        _copy_base.parse_row_binary,
        _copy_base.parse_row_text,
    )
except (ImportError, AttributeError):  # pragma: no cover - depends on psycopg
    _copy_formats = None


def copy_formats() -> CopyFormats | None:
    """What COPY stubs write and read whole batches of rows with; None where this psycopg lacks it, or wires are
    off (then they go through psycopg's public row methods, `Copy.write_row`, and parse rows by themselves)."""
    return _copy_formats if switch.on else None
