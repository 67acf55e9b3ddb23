"""`AsyncStream`: the rows of an async stub annotated ``-> AsyncIterator[T]`` (see `_streams`).

This is the async source; `_stream` (`Stream`) is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from psycopg import AsyncServerCursor

from ._convert import too_deep
from ._shield import finish
from ._streams import BATCH_SIZE, StreamBase

__all__ = ["AsyncStream"]

T = TypeVar("T")


class AsyncStream(StreamBase[T], AsyncIterator[T]):
    """The rows of an async stub annotated ``-> AsyncIterator[T]``."""

    __slots__ = ("_cursor",)

    def __init__(
        self,
        stub: str,
        cursor: AsyncServerCursor[Any],
        make: Callable[[list[Any]], list[T]],
        lock: Any,
        open_streams: list[Any],
    ) -> None:
        super().__init__(stub, make, lock, open_streams)
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
            async with self._lock:
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
        self._drop(by_session=False)
        await self._cursor.close()

    async def _aend(self) -> None:
        """Close it as its session ends: using it afterwards raises `NoSessionError`."""
        self._drop(by_session=True)
        await self._cursor.close()

    async def __aenter__(self) -> AsyncStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


if True:  # ASYNC

    class LazyAsyncStream(AsyncIterator[Any]):
        """What a plain ``def`` stub annotated ``-> AsyncIterator[T]`` returns: the query runs at first ``anext``."""

        __slots__ = ("_start", "_stream")

        def __init__(self, start: Callable[[], Awaitable[AsyncStream[Any]]]) -> None:
            self._start = start
            self._stream: AsyncStream[Any] | None = None

        def __aiter__(self) -> LazyAsyncStream:
            return self

        async def __anext__(self) -> Any:
            if self._stream is None:
                self._stream = await self._start()
            return await self._stream.__anext__()

        async def aclose(self) -> None:
            if self._stream is not None:
                await self._stream.aclose()
