"""Streams: ``Iterator[T]`` / ``AsyncIterator[T]`` results read through a server-side cursor.

A stream fetches rows in batches, so memory stays flat however many rows there are. It belongs to the session
that opened it: the session closes it at exit, and using it afterwards raises `NoSessionError`. These are plain
iterator classes rather than generators, so closing never waits for the garbage collector.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from psycopg import AsyncServerCursor, ServerCursor

from ._convert import too_deep
from ._errors import NoSessionError
from ._shield import finish

if TYPE_CHECKING:
    from ._session import Session

T = TypeVar("T")

#: Rows fetched per round trip.
BATCH_SIZE = 1000


class _StreamBase(Generic[T]):
    __slots__ = ("_done", "_ended_by_session", "_make", "_next", "_session", "_stub")

    def __init__(self, stub: str, session: Session, make: Callable[[list[Any]], list[T]]) -> None:
        self._stub = stub
        self._session = session
        #: Fetched rows (tuples) → values of the stub's row type, a batch at a time.
        self._make = make
        #: The next value of the current batch (the batch's list iterator), raising StopIteration at its end.
        self._next: Callable[[], T] = iter(()).__next__
        self._done = False
        self._ended_by_session = False
        session._track(self)  # type: ignore[arg-type]

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

    def _drop(self) -> None:
        self._done = True
        self._next = iter(()).__next__


class Stream(_StreamBase[T], Iterator[T]):
    """The rows of a sync stub annotated ``-> Iterator[T]``."""

    __slots__ = ("_cursor",)

    def __init__(
        self, stub: str, session: Session, cursor: ServerCursor[Any], make: Callable[[list[Any]], list[T]]
    ) -> None:
        super().__init__(stub, session, make)
        self._cursor = cursor

    def __iter__(self) -> Stream[T]:
        return self

    def __next__(self) -> T:
        try:
            return self._next()
        except StopIteration:
            pass
        self._check_open()
        if not self._done:
            with self._session.lock:
                try:
                    self._refill(self._cursor.fetchmany(BATCH_SIZE))
                except RecursionError:
                    raise too_deep(self._stub) from None
            try:
                return self._next()
            except StopIteration:
                pass
        self.close()
        raise StopIteration

    def close(self) -> None:
        """Close the server-side cursor now; the session also does it at exit."""
        self._drop()
        self._session._untrack(self)
        self._cursor.close()

    def _end_sync(self) -> None:
        self._ended_by_session = True
        self._drop()
        self._cursor.close()

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStream(_StreamBase[T], AsyncIterator[T]):
    """The rows of an async stub annotated ``-> AsyncIterator[T]``."""

    __slots__ = ("_cursor",)

    def __init__(
        self, stub: str, session: Session, cursor: AsyncServerCursor[Any], make: Callable[[list[Any]], list[T]]
    ) -> None:
        super().__init__(stub, session, make)
        self._cursor = cursor

    def __aiter__(self) -> AsyncStream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return self._next()
        except StopIteration:
            pass
        self._check_open()
        if not self._done:
            async with self._session.lock:
                try:
                    self._refill(await finish(self._cursor.fetchmany(BATCH_SIZE), statement_on=self._cursor.connection))
                except RecursionError:
                    raise too_deep(self._stub) from None
            try:
                return self._next()
            except StopIteration:
                pass
        await self.aclose()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Close the server-side cursor now; the session also does it at exit."""
        self._drop()
        self._session._untrack(self)
        await self._cursor.close()

    async def _end_async(self) -> None:
        self._ended_by_session = True
        self._drop()
        await self._cursor.close()

    async def __aenter__(self) -> AsyncStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
