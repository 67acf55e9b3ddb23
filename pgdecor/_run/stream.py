# Generated from pgdecor/_run/stream_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._run.stream_async`, generated from it: see there."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import ServerCursor
from typing_extensions import Self

from pgdecor._errors import Error
from pgdecor._rows.json_load import too_deep
from pgdecor._rows.streams import BATCH_SIZE, StreamBase
from pgdecor._session.lease import Lease
from pgdecor._session.state import SyncState

from . import lookup, trace
from .routes import Route

__all__ = ["BatchStream", "Stream", "opened"]

T = TypeVar("T")

_IDLE = psycopg.pq.TransactionStatus.IDLE
_cursor_names = itertools.count(1)

_WITH = "with "

#: The server a span says a call reached (see `trace.Call.end`).
Server = tuple[str | None, str | None, str | None]


class BatchStream(StreamBase[T], Iterator[T]):
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

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        try:
            return self._next()
        except StopIteration:
            pass
        self._check_open()
        if not self._done:
            with self._lock:
                try:
                    self._refill(self._fetch())
                except RecursionError:
                    raise too_deep(self._stub) from None
            try:
                return self._next()
            except StopIteration:
                pass
        self.close()
        raise StopIteration

    def _fetch(self) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Stream(BatchStream[T]):
    """The rows of an async stub annotated ``-> AsyncIterator[T]``."""

    __slots__ = ("_cursor",)

    def __init__(
        self,
        stub: str,
        cursor: ServerCursor[Any],
        make: Callable[[list[Any]], list[T]],
        lock: Any,
        open_streams: list[Any],
    ) -> None:
        super().__init__(stub, make, lock, open_streams)
        self._cursor = cursor

    def _fetch(self) -> list[Any]:
        return self._cursor.fetchmany(BATCH_SIZE)

    def close(self) -> None:
        """Close the server-side cursor now; the session also does it at exit."""
        self._drop(by_session=False)
        self._cursor.close()

    def _end(self) -> None:
        """Close it as its session ends: using it afterwards raises `NoSessionError`."""
        self._drop(by_session=True)
        self._cursor.close()

    def _last_result(self) -> object:
        """Its cursor's last result: the leak guard sees the stream in use by its changing."""
        return self._cursor.pgresult


def opened(stub: str, sess: SyncState, lease: Lease, route: Route, params: Sequence[Any]) -> Stream[Any]:
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
        cur.execute(route.sql, params, binary=binary)
        layout = lookup.layout(lease, route, cur, binary)
    except BaseException:
        cur.close()
        raise
    return Stream(stub, cur, layout.many, sess.lock, sess.open_streams)
