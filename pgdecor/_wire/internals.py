"""Every name of psycopg and psycopg_pool that pgdecor uses beyond their documented API, looked up here and nowhere
else, the way psycopg fences libpq behind ``pq``: functions, generators, classes and constants by `look_up`, the
attributes of their objects by the readers below (C attribute getters: no slower than reading the attribute).

Each is pinned by what it does in tests/test_psycopg_contract.py. Where one is missing, `look_up` says which and the
lean call path (`_wire.wire`) stays off: every call goes through psycopg's cursors. Where one answers in a way pgdecor
does not know (raises, or returns another shape), its user raises `Drift` naming it, and falls back to the public
path (see `_wire.wire`, `_sources.fork`).
"""

from __future__ import annotations

import operator
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Generator, Sequence
from types import SimpleNamespace
from typing import Any, NamedTuple

import psycopg
from psycopg import BaseConnection, pq

__all__ = [
    "NO_POOL_ATTRIBUTE",
    "CopyFormats",
    "Drift",
    "idle_connections",
    "lock",
    "look_up",
    "pool_of",
    "prepare_manager",
    "prepare_threshold",
    "prepared_index",
    "prepared_names",
    "set_prepared_index",
    "to_flush",
    "wait",
]


class Drift(Exception):  # noqa: N818 - what happened to psycopg, not an error of the user's
    """A private of psycopg or psycopg_pool, *what*, raised *err* or answered in a shape pgdecor does not know."""

    def __init__(self, what: str, err: BaseException) -> None:
        super().__init__(f"{what}: {type(err).__name__}: {err}")
        self.what = what


class CopyFormats(NamedTuple):
    """psycopg's COPY row formats (in C where psycopg is built with it): a row of values into COPY data, binary or
    text, appended to a buffer; and a row of COPY data into values."""

    format_binary: Callable[[Sequence[Any], Any, bytearray], None]
    format_text: Callable[[Sequence[Any], Any, bytearray], None]
    parse_binary: Callable[[Any, Any], tuple[Any, ...]]
    parse_text: Callable[[Any, Any], tuple[Any, ...]]


# -- the attributes of psycopg's and psycopg_pool's objects ------------------------------------------------------

#: A connection's prepare manager (``conn._prepared``), its threshold, its ``(query, types) → name`` map in LRU
#: order, what it has still to deallocate, and the number its next statement's name gets.
prepare_manager: Callable[[Any], Any] = operator.attrgetter("_prepared")
prepare_threshold: Callable[[Any], int | None] = operator.attrgetter("prepare_threshold")
prepared_names: Callable[[Any], OrderedDict[tuple[bytes, tuple[int, ...]], bytes]] = operator.attrgetter("_names")
to_flush: Callable[[Any], deque[bytes | None]] = operator.attrgetter("_to_flush")
prepared_index: Callable[[Any], Any] = operator.attrgetter("_prepared_idx")


def set_prepared_index(manager: Any, index: int) -> None:
    manager._prepared_idx = index


#: The connection's lock, which psycopg holds while a statement is on the wire, and its wait (``conn.wait(gen)``),
#: which drives one of psycopg's generators on its socket.
lock: Callable[[Any], Any] = operator.attrgetter("lock")
wait: Callable[[Any], Callable[[Generator[Any, Any, Any]], Any]] = operator.attrgetter("wait")

#: What `pool_of` gives for a connection psycopg_pool has never held.
NO_POOL_ATTRIBUTE = object()


def idle_connections(pool: Any) -> list[BaseConnection[Any]] | None:
    """The idle connections a psycopg_pool pool holds (its ``_pool`` deque, each with the `pool_of` attribute);
    None where it holds them another way."""
    idle = getattr(pool, "_pool", None)
    if not isinstance(idle, deque) or not all(
        isinstance(conn, BaseConnection) and pool_of(conn) is not NO_POOL_ATTRIBUTE for conn in idle
    ):
        return None
    return list(idle)


def pool_of(conn: Any) -> Any:
    """The pool that lent a connection (``conn._pool``: psycopg_pool sets it when it lends the connection, and to
    None when it takes it back); `NO_POOL_ATTRIBUTE` for one no pool has held."""
    return getattr(conn, "_pool", NO_POOL_ATTRIBUTE)


# -- functions, generators, classes and constants, by `look_up` --------------------------------------------------

#: psycopg's placeholder conversion (%s, %(name)s, %b, %t → $n, cached): ``(query, formats, order, parts)``.
query2pg: Callable[[bytes, str], tuple[Any, ...]]
#: psycopg's generator that flushes a query and reads every result (in C), and the async wait that drives one on a
#: socket.
execute: Callable[[pq.abc.PGconn], Generator[Any, Any, list[pq.abc.PGresult]]]
wait_async: Callable[[Any, int], Awaitable[Any]]
#: What psycopg's generators yield (what to wait for), and are sent back (what is ready).
WAIT_R = WAIT_W = WAIT_RW = READY_R = READY_W = 0
#: psycopg's prepare manager's answers (``Prepare``), and its class.
YES: Any = None
NO: Any = None
SHOULD: Any = None
PrepareManager: Any = None
#: psycopg's COPY row functions, None where this psycopg lacks them.
copy_formats: CopyFormats | None = None
#: Whether psycopg's prepare manager, told of one more execution of a statement it has prepared, only moves it to
#: the recent end of its LRU order (`lru_is_a_move`).
LRU_IS_A_MOVE = False
#: Why the lean call path cannot run on this psycopg (what `look_up` did not find), or None.
missing: str | None = None


def look_up() -> str | None:
    """Look up every private the lean call path uses; return the first missing (named as psycopg spells it), or
    None. Run at import."""
    global copy_formats, LRU_IS_A_MOVE, missing  # noqa: PLW0603 - what `look_up` is for
    try:
        from psycopg import _copy_base  # noqa: PLC0415 - looked up again by the drift tests

        copy_formats = CopyFormats(
            _copy_base.format_row_binary,
            _copy_base.format_row_text,
            _copy_base.parse_row_binary,
            _copy_base.parse_row_text,
        )
    except (ImportError, AttributeError):
        copy_formats = None
    missing, LRU_IS_A_MOVE = _look_up_wire(), False
    if missing is None:
        LRU_IS_A_MOVE = lru_is_a_move()
    return missing


def _look_up_wire() -> str | None:
    global query2pg, execute, wait_async, WAIT_R, WAIT_W, WAIT_RW, READY_R, READY_W  # noqa: PLW0603 - see `look_up`
    global YES, NO, SHOULD, PrepareManager  # noqa: PLW0603 - see `look_up`
    what = "psycopg._queries._query2pg"
    try:
        from psycopg import _preparing, _queries, generators, waiting  # noqa: PLC0415 - looked up again in tests

        query2pg = _queries._query2pg
        what = "psycopg.generators.execute"
        execute = generators.execute
        what = "psycopg.waiting.wait_async"
        wait_async = waiting.wait_async
        what = "psycopg.waiting.Wait and Ready"
        WAIT_R, WAIT_W, WAIT_RW = int(waiting.Wait.R), int(waiting.Wait.W), int(waiting.Wait.RW)
        READY_R, READY_W = int(waiting.Ready.R), int(waiting.Ready.W)
        what = "psycopg._preparing.Prepare"
        YES, NO, SHOULD = _preparing.Prepare.YES, _preparing.Prepare.NO, _preparing.Prepare.SHOULD
        what = "psycopg._preparing.PrepareManager"
        PrepareManager = _preparing.PrepareManager
    except (ImportError, AttributeError):
        return what
    checks = (
        ("psycopg._queries._query2pg", callable(query2pg)),
        ("psycopg.generators.execute", callable(execute)),
        ("psycopg.waiting.wait_async", callable(wait_async)),
        ("psycopg.Connection.wait", callable(getattr(psycopg.Connection, "wait", None))),
        ("psycopg._preparing.PrepareManager._names", isinstance(getattr(_new_manager(), "_names", None), dict)),
        *(
            (f"psycopg._preparing.PrepareManager.{name}", callable(getattr(PrepareManager, name, None)))
            for name in ("get", "key", "maybe_add_to_cache", "validate")
        ),
    )
    return next((what for what, ok in checks if not ok), None)


def _new_manager() -> Any:
    try:
        return PrepareManager()
    except Exception:  # noqa: BLE001 - any change in psycopg's manager: missing
        return None


def lru_is_a_move() -> bool:
    """Whether psycopg's prepare manager, told of one more execution of a statement it has prepared, only moves it
    to the recent end of its LRU order and asks for no ``validate``: then a wire does just that, in one step,
    instead of asking it (`Wire._made`). Found out by what a manager of its own does, never assumed: where it does
    anything else, wires ask psycopg's manager every time."""
    try:
        told, moved = PrepareManager(), PrepareManager()
        first: Any = SimpleNamespace(query=b"SELECT 1", types=())  # what the manager keys a statement by
        second: Any = SimpleNamespace(query=b"SELECT 2", types=(23,))
        for manager in (told, moved):
            for query, name in ((first, b"_pg3_0"), (second, b"_pg3_1")):
                manager.maybe_add_to_cache(query, SHOULD, name)
        answer = told.maybe_add_to_cache(first, YES, b"_pg3_0")
        moved._names.move_to_end(PrepareManager.key(first))
        same = [list(told._names.items()), list(told._counts.items()), list(told._to_flush)] == [
            list(moved._names.items()),
            list(moved._counts.items()),
            list(moved._to_flush),
        ]
    except Exception:  # noqa: BLE001 - any change in psycopg's manager: ask it every time
        return False
    return answer is None and same and len(told._names) == 2


look_up()
