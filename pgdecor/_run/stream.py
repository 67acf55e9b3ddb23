# Generated from pgdecor/_run/stream_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._run.stream_async`, generated from it: see there."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from psycopg import ServerCursor
from typing_extensions import Self

from pgdecor._rows.json_load import too_deep
from pgdecor._rows.streams import BATCH_SIZE, StreamBase

__all__ = ["BatchStream", "Stream"]

T = TypeVar("T")


class BatchStream(StreamBase[T], Iterator[T]):
    """What a stream of rows fetched in batches does as it is iterated; `_fetch` gets the next batch, under the
    session's lock."""

    __slots__ = ()

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
