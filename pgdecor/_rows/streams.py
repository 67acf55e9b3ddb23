"""Streams: ``Iterator[T]`` / ``AsyncIterator[T]`` results read through a server-side cursor.

A stream fetches rows in batches, so memory stays flat however many rows there are. It belongs to the session
that opened it: it is listed in the session's open streams, which the session ends at exit, and using it
afterwards raises `NoSessionError`. These are plain iterator classes rather than generators, so closing never
waits for the garbage collector. What both kinds share is here; `Stream` and `AsyncStream` are in `_run.stream` and
`_run.stream_async`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pgdecor._errors import NoSessionError

T = TypeVar("T")

#: Rows fetched per round trip.
BATCH_SIZE = 1000


class StreamBase(Generic[T]):
    __slots__ = ("_done", "_ended_by_session", "_lock", "_make", "_next", "_open", "_stub")

    def __init__(self, stub: str, make: Callable[[list[Any]], list[T]], lock: Any, open_streams: list[Any]) -> None:
        self._stub = stub
        #: Fetched rows (tuples) → values of the stub's row type, a batch at a time.
        self._make = make
        #: The session's lock, held while fetching (calls of tasks sharing the session take turns), and its list
        #: of open streams, which this one leaves when closed.
        self._lock = lock
        self._open = open_streams
        #: The next value of the current batch (the batch's list iterator), raising StopIteration at its end.
        self._next: Callable[[], T] = iter(()).__next__
        self._done = False
        self._ended_by_session = False
        open_streams.append(self)

    def _check_open(self) -> None:
        if self._ended_by_session:
            msg = (
                f"the stream returned by {self._stub} was used after its session ended; consume it inside the "
                f"`with session(...)` block, or annotate the stub `-> list[...]` to fetch every row at once"
            )
            raise NoSessionError(msg)

    def _refill(self, rows: list[Any]) -> None:
        self._next = iter(self._make(rows)).__next__
        if len(rows) < BATCH_SIZE:
            self._done = True

    def _drop(self, *, by_session: bool) -> None:
        self._done = True
        self._next = iter(()).__next__
        if by_session:
            self._ended_by_session = True
        elif self in self._open:
            self._open.remove(self)
