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
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar, cast, overload

import psycopg
from psycopg import AsyncConnection, AsyncPipeline, BaseConnection, Connection, Pipeline, pq
from psycopg.abc import Buffer, Transformer

if TYPE_CHECKING:
    import asyncio
    import threading

    from psycopg._preparing import Prepare as Prepare  # noqa: PLC0414 - for the wire's annotations alone
    from psycopg_pool.base import BasePool

__all__ = [
    "MANAGER",
    "NAMES",
    "NO_POOL_ATTRIBUTE",
    "PIPELINE_READS",
    "PREPARED_INDEX",
    "QUERY2PG",
    "CopyFormats",
    "Drift",
    "Key",
    "Keyed",
    "Manager",
    "Wait",
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
    "unlink",
    "wait",
]

T = TypeVar("T")


class Drift(Exception):  # noqa: N818 - what happened to psycopg, not an error of the user's
    """A private of psycopg or psycopg_pool, *what*, raised *err* or answered in a shape pgdecor does not know."""

    def __init__(self, what: str, err: BaseException) -> None:
        super().__init__(f"{what}: {type(err).__name__}: {err}")
        self.what = what


class CopyFormats(NamedTuple):
    """psycopg's COPY row formats (in C where psycopg is built with it): a row of values into COPY data, binary or
    text, appended to a buffer; and a row of COPY data into values."""

    format_binary: Callable[[Sequence[Any], Transformer, bytearray], None]
    format_text: Callable[[Sequence[Any], Transformer, bytearray], None]
    parse_binary: Callable[[Buffer, Transformer], tuple[Any, ...]]
    parse_text: Callable[[Buffer, Transformer], tuple[Any, ...]]


#: What psycopg's prepare manager keys a statement by: its query (with $n placeholders) and its parameters' types.
Key = tuple[bytes, tuple[int, ...]]


class Keyed(Protocol):
    """What psycopg's prepare manager reads of a statement (a ``PostgresQuery``'s ``query`` and ``types``)."""

    query: bytes
    types: tuple[int, ...]


class Manager(Protocol):
    """What the wire calls of psycopg's prepare manager (``psycopg._preparing.PrepareManager``); what it reads of its
    state goes through `prepare_threshold`, `prepared_names` and `to_flush`."""

    @staticmethod
    def key(query: Keyed) -> Key: ...

    def get(self, query: Keyed, prepare: bool | None = None) -> tuple[Prepare, bytes]: ...

    def maybe_add_to_cache(self, query: Keyed, prep: Prepare, name: bytes) -> Key | None: ...

    def validate(self, key: Key, prep: Prepare, name: bytes, results: Sequence[pq.abc.PGresult]) -> None: ...


class Wait(Protocol):
    """A connection's wait (``Connection.wait``): runs a generator of waits on its socket, returns what it returns."""

    def __call__(self, gen: Generator[object, Any, T], /) -> T: ...


class _WaitOf(Protocol):
    @overload
    def __call__(self, conn: Connection[Any], /) -> Wait: ...
    @overload
    def __call__(self, conn: AsyncConnection[Any], /) -> Callable[..., Awaitable[Any]]: ...


class _LockOf(Protocol):
    @overload
    def __call__(self, conn: Connection[Any], /) -> threading.Lock: ...
    @overload
    def __call__(self, conn: AsyncConnection[Any], /) -> asyncio.Lock: ...


#: The privates as a `Drift` names them, spelled here alone.
QUERY2PG = "psycopg._queries._query2pg"
MANAGER = "psycopg._preparing.PrepareManager"
NAMES = f"{MANAGER}._names"
PREPARED_INDEX = f"{MANAGER}._prepared_idx"


# -- the attributes of psycopg's and psycopg_pool's objects ------------------------------------------------------

#: A connection's prepare manager (``conn._prepared``), its threshold, its ``(query, types) → name`` map in LRU
#: order, what it has still to deallocate, and the number its next statement's name gets.
prepare_manager: Callable[[BaseConnection[Any]], Manager] = operator.attrgetter("_prepared")
prepare_threshold: Callable[[Manager], int | None] = operator.attrgetter("prepare_threshold")
prepared_names: Callable[[Manager], OrderedDict[Key, bytes]] = operator.attrgetter("_names")
to_flush: Callable[[Manager], deque[bytes | None]] = operator.attrgetter("_to_flush")
prepared_index: Callable[[Manager], object] = operator.attrgetter("_prepared_idx")


def set_prepared_index(manager: Manager, index: int) -> None:
    manager._prepared_idx = index  # type: ignore[attr-defined] # psycopg's own counter, read by `prepared_index`


#: The connection's lock, which psycopg holds while a statement is on the wire, and its wait (``conn.wait(gen)``),
#: which drives one of psycopg's generators on its socket.
lock: _LockOf = operator.attrgetter("lock")
wait: _WaitOf = operator.attrgetter("wait")

#: What `pool_of` gives for a connection psycopg_pool has never held.
NO_POOL_ATTRIBUTE = object()


def idle_connections(pool: BasePool) -> list[BaseConnection[Any]] | None:
    """The idle connections a psycopg_pool pool holds (its ``_pool`` deque, each with the `pool_of` attribute);
    None where it holds them another way."""
    idle = getattr(pool, "_pool", None)
    if not isinstance(idle, deque) or not all(
        isinstance(conn, BaseConnection) and pool_of(conn) is not NO_POOL_ATTRIBUTE for conn in idle
    ):
        return None
    return list(idle)


def pool_of(conn: BaseConnection[Any]) -> object:
    """The pool that lent a connection (``conn._pool``: psycopg_pool sets it when it lends the connection, and to
    None when it takes it back); `NO_POOL_ATTRIBUTE` for one no pool has held."""
    return getattr(conn, "_pool", NO_POOL_ATTRIBUTE)


# -- psycopg's pipelines, their reads made to leave no cycle -----------------------------------------------------

#: The generators psycopg's pipelines read results with (``BasePipeline._communicate_gen`` and ``_fetch_gen``). Each
#: keeps the first error it reads in a local while it reads on; where reading on raises too (a server that ends the
#: connection just after that error, as a backend terminated by its own statement does), its frame, finished by the
#: second error, keeps the first, whose traceback keeps the frame: a cycle only the cyclic collector frees.
PIPELINE_READS = ("_communicate_gen", "_fetch_gen")
#: psycopg's pipeline classes, each with its subclass whose reads break that cycle (`unlink`); empty where this
#: psycopg's pipelines lack the reads.
_unlinking: dict[type[Any], type[Any]] = {}


def unlinks() -> bool:
    """Whether `unlink` can make psycopg's pipelines leave no cycle when they raise: only then does a session's
    BEGIN go in one of them with its first statement."""
    return bool(_unlinking)


def unlink(pipeline: Pipeline | AsyncPipeline) -> None:
    """Have *pipeline* (one `conn.pipeline()` gave) clear the frame of any of its reads that raises, so that the
    error it kept there is freed with it: the same pipeline, of a subclass whose reads do just that."""
    unlinking = _unlinking.get(type(pipeline))
    if unlinking is not None:
        pipeline.__class__ = unlinking


def _unlinking_class(base: type[Any]) -> type[Any] | None:
    """*base* with its reads made to clear their frame when they raise; None where it lacks one of them."""
    reads = {name: read for name in PIPELINE_READS if callable(read := getattr(base, name, None))}
    if len(reads) < len(PIPELINE_READS):
        return None
    # No slots of its own: an instance of *base* takes the subclass as it is.
    return type(base.__name__, (base,), {"__slots__": (), **{name: _unlinked(read) for name, read in reads.items()}})


def _unlinked(read: Callable[..., Any]) -> Callable[..., Any]:
    def unlinked_read(self: Any, *args: Any, **kwargs: Any) -> Any:
        gen = read(self, *args, **kwargs)
        return _cleared_on_error(gen) if isinstance(gen, Generator) else gen

    return unlinked_read


def _cleared_on_error(read: Generator[Any, Any, T]) -> Generator[Any, Any, T]:
    try:
        return (yield from read)
    except BaseException as err:
        _clear_below(err)
        raise


def _clear_below(err: BaseException) -> None:
    """Clear the frame *err* came out of, the read this one delegated to: ended, it runs no more, and its locals
    may hold an earlier error whose traceback holds the frame. (A function of its own: a local here holding a
    traceback is freed on return, where one in the generator above would hold it.)"""
    tb = err.__traceback__
    if tb is not None and tb.tb_next is not None:
        tb.tb_next.tb_frame.clear()


# -- functions, generators, classes and constants, by `look_up` --------------------------------------------------

#: psycopg's placeholder conversion (%s, %(name)s, %b, %t → $n, cached): ``(query, formats, order, parts)``, checked
#: by its caller.
query2pg: Callable[[bytes, str], tuple[Any, ...]]
#: What psycopg's generators yield (what to wait for), and are sent back (what is ready).
WAIT_R = WAIT_W = WAIT_RW = READY_R = READY_W = 0
#: psycopg's prepare manager's answers, and its class (none until `look_up` finds them).
_NONE: Any = None
YES: Prepare = _NONE
NO: Prepare = _NONE
SHOULD: Prepare = _NONE
PrepareManager: type[Manager] = _NONE
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
    found = {base: _unlinking_class(base) for base in (psycopg.Pipeline, psycopg.AsyncPipeline)}
    _unlinking.clear()
    _unlinking.update({base: unlinking for base, unlinking in found.items() if unlinking is not None})
    if len(_unlinking) < len(found):  # both kinds or neither: a lease of either asks `unlinks`
        _unlinking.clear()
    missing, LRU_IS_A_MOVE = _look_up_wire(), False
    if missing is None:
        LRU_IS_A_MOVE = lru_is_a_move()
    return missing


def _look_up_wire() -> str | None:
    global query2pg, WAIT_R, WAIT_W, WAIT_RW, READY_R, READY_W  # noqa: PLW0603 - see `look_up`
    global YES, NO, SHOULD, PrepareManager  # noqa: PLW0603 - see `look_up`
    what = QUERY2PG
    try:
        from psycopg import _preparing, _queries, waiting  # noqa: PLC0415 - looked up again in tests

        query2pg = _queries._query2pg
        what = "psycopg.waiting.Wait and Ready"
        WAIT_R, WAIT_W, WAIT_RW = int(waiting.Wait.R), int(waiting.Wait.W), int(waiting.Wait.RW)
        READY_R, READY_W = int(waiting.Ready.R), int(waiting.Ready.W)
        what = "psycopg._preparing.Prepare"
        YES, NO, SHOULD = _preparing.Prepare.YES, _preparing.Prepare.NO, _preparing.Prepare.SHOULD
        what = MANAGER
        # Its methods take psycopg's own query class, which has all that `Keyed` says they read.
        PrepareManager = cast("type[Manager]", _preparing.PrepareManager)
    except (ImportError, AttributeError):
        return what
    checks = (
        (QUERY2PG, callable(query2pg)),
        ("psycopg.Connection.wait", callable(getattr(psycopg.Connection, "wait", None))),
        (NAMES, isinstance(getattr(_new_manager(), "_names", None), dict)),
        *(
            (f"{MANAGER}.{name}", callable(getattr(PrepareManager, name, None)))
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
        told: Any = PrepareManager()
        moved: Any = PrepareManager()
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
