"""`AsyncStream`: the rows of an async stub annotated ``-> AsyncIterator[T]`` (see `_rows.streams`), and how a call
of such a stub opens one (`opened`): the path of a call (`_run.call_async`) up to the layout, its statement run by a
server-side cursor of its own, whose rows the stream then reads a batch at a time.

This is the async source; `_run.stream` (`Stream`) is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg import AsyncServerCursor
from typing_extensions import Self

from pgdecor._errors import Error
from pgdecor._rows.json_load import too_deep
from pgdecor._rows.streams import BATCH_SIZE, StreamBase
from pgdecor._session.lease_async import AsyncLease
from pgdecor._session.state import AsyncState
from pgdecor._wire.shield import finish

from . import lookup_async as lookup
from . import trace
from .routes import Route

__all__ = ["AsyncBatchStream", "AsyncStream", "opened"]

T = TypeVar("T")

_IDLE = psycopg.pq.TransactionStatus.IDLE
_cursor_names = itertools.count(1)

if True:  # ASYNC
    _WITH = "async with "
else:
    _WITH = "with "

#: The server a span says a call reached (see `trace.Call.end`).
Server = tuple[str | None, str | None, str | None]


class AsyncBatchStream(StreamBase[T], AsyncIterator[T]):
    """What a stream of rows fetched in batches does as it is iterated; `_fetch` gets the next batch, under the
    session's lock."""

    __slots__ = ("_span",)

    def __init__(self, stub: str, make: Callable[[list[Any]], list[T]], lock: Any, open_streams: list[Any]) -> None:
        super().__init__(stub, make, lock, open_streams)
        #: The span of the call that opened it, and the server that call reached: the span ends with the stream.
        self._span: tuple[trace.Call, Server | None] | None = None

    def traced(self, span: trace.Call, server: Server | None) -> None:
        """End *span*, of the call that opened the stream on *server*, when the stream ends."""
        self._span = (span, server)

    def _drop(self, *, by_session: bool) -> None:
        super()._drop(by_session=by_session)
        span, self._span = self._span, None
        if span is not None:
            span[0].end(span[1], None)

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


async def opened(
    stub: str, sess: AsyncState, lease: AsyncLease, route: Route, params: Sequence[Any]
) -> AsyncStream[Any]:
    """A stream of the rows of *route*'s statement run with *params* by a server-side cursor of its own (see
    `_run.call_async`): its layout is that of their first batch."""
    if lease.tx is None and lease.conn.info.transaction_status == _IDLE:
        msg = (
            f"{stub}: a stream reads through a server-side cursor, which needs a transaction, and an autocommit "
            f"session begins none; read it inside `{_WITH}transaction():`, or annotate `-> list[...]`"
        )
        raise Error(msg)
    binary = route.binary and lease.binary
    cur = lease.server_cursor(f"pgdecor_{next(_cursor_names)}")
    try:
        await finish(cur.execute(route.sql, params, binary=binary), statement_on=lease.conn)
        layout = await lookup.layout(lease, route, cur, binary)
    except BaseException:
        await cur.close()
        raise
    return AsyncStream(stub, cur, layout.many, sess.lock, sess.open_streams)


if True:  # ASYNC

    class _AsyncRows(Protocol):
        def __anext__(self) -> Awaitable[Any]: ...

        async def aclose(self) -> None: ...

    class LazyAsyncStream(AsyncIterator[Any]):
        """What a plain ``def`` stub annotated ``-> AsyncIterator[T]`` returns: its query or COPY starts at the
        first ``anext``."""

        __slots__ = ("_closed", "_start", "_stream")

        def __init__(self, start: Callable[[], Awaitable[_AsyncRows]]) -> None:
            self._start = start
            self._stream: _AsyncRows | None = None
            self._closed = False

        @property
        def started(self) -> _AsyncRows | None:
            """The stream its first read started, or None before it."""
            return self._stream

        def __aiter__(self) -> Self:
            return self

        async def __anext__(self) -> Any:
            if self._stream is None:
                if self._closed:  # closed before its first read: it never starts
                    raise StopAsyncIteration
                self._stream = await self._start()
            return await self._stream.__anext__()

        async def aclose(self) -> None:
            self._closed = True
            if self._stream is not None:
                await self._stream.aclose()

        async def __aenter__(self) -> Self:
            return self

        async def __aexit__(self, *exc: object) -> None:
            await self.aclose()
