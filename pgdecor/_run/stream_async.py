"""`AsyncStream`: the rows of an async stub annotated ``-> AsyncIterator[T]`` (see `_rows.streams`).

This is the async source; `_run.stream` (`Stream`) is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

from psycopg import AsyncServerCursor
from typing_extensions import Self

from pgdecor._rows.json_load import too_deep
from pgdecor._rows.streams import BATCH_SIZE, StreamBase
from pgdecor._wire.shield import finish

__all__ = ["AsyncBatchStream", "AsyncStream"]

T = TypeVar("T")


class AsyncBatchStream(StreamBase[T], AsyncIterator[T]):
    """What a stream of rows fetched in batches does as it is iterated; `_fetch` gets the next batch, under the
    session's lock."""

    __slots__ = ()

    def __aiter__(self) -> Self:
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
                    self._refill(await self._fetch())
                except RecursionError:
                    raise too_deep(self._stub) from None
            try:
                return self._next()
            except StopIteration:
                pass
        await self.aclose()
        raise StopAsyncIteration

    async def _fetch(self) -> list[Any]:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncStream(AsyncBatchStream[T]):
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

    async def _fetch(self) -> list[Any]:
        return await finish(self._cursor.fetchmany(BATCH_SIZE), statement_on=self._cursor.connection)

    async def aclose(self) -> None:
        """Close the server-side cursor now; the session also does it at exit."""
        self._drop(by_session=False)
        await self._cursor.close()

    async def _aend(self) -> None:
        """Close it as its session ends: using it afterwards raises `NoSessionError`."""
        self._drop(by_session=True)
        await self._cursor.close()

    def _last_result(self) -> object:
        """Its cursor's last result: the leak guard sees the stream in use by its changing."""
        return self._cursor.pgresult


if True:  # ASYNC

    class _AsyncRows(Protocol):
        def __anext__(self) -> Awaitable[Any]: ...

        async def aclose(self) -> None: ...

    class LazyAsyncStream(AsyncIterator[Any]):
        """What a plain ``def`` stub annotated ``-> AsyncIterator[T]`` returns: its query or COPY starts at the
        first ``anext``."""

        __slots__ = ("_start", "_stream")

        def __init__(self, start: Callable[[], Awaitable[_AsyncRows]]) -> None:
            self._start = start
            self._stream: _AsyncRows | None = None

        def __aiter__(self) -> Self:
            return self

        async def __anext__(self) -> Any:
            if self._stream is None:
                self._stream = await self._start()
            return await self._stream.__anext__()

        async def aclose(self) -> None:
            if self._stream is not None:
                await self._stream.aclose()

        async def __aenter__(self) -> Self:
            return self

        async def __aexit__(self, *exc: object) -> None:
            await self.aclose()
