"""Reads through a wire a run at a time: a statement's rows in chunks as they come (`AsyncChunks`), and a batch's
results as they come (`AsyncBatchResults`), each in a pipeline of its own, under the connection's lock. Each run is
what came, a list at a time, which the caller makes into values while the server sends the rest.

This is the async source; `_wire.reads` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from psycopg import pq
from typing_extensions import Self

from . import batch, flight, internals, owed
from .generators import BatchRead, ChunksRead, chunks, executions
from .liveness_async import answered, settle
from .shield import finish
from .wire_async import AsyncWire
from .wire_base import FOLDS, begin_for, send_begin

__all__ = ["AsyncBatchResults", "AsyncChunks"]

_ACTIVE = pq.TransactionStatus.ACTIVE
_CONNECTION_OK = pq.ConnStatus.OK


class _AsyncRead:
    """What a chunked read and a batch through a wire share. Entered, it sends the statement (or the batch) in a
    pipeline of its own, under the connection's lock, and gives itself, or None, with nothing sent, where psycopg
    has not prepared what it runs: run it through a cursor then. Iterated, it gives what came, a list at a time,
    reading only what is in and what the next list waits for: the caller makes values of one list while the server
    sends the next. It ends with psycopg's error for a statement that failed, once everything is read; so that the
    connection goes on serving the session, a caller that cannot make a value keeps its error, reads on, and raises
    it at the end. Left, it reads what is left (the statement stopped on the server first where the read was cut
    short by a cancellation), then leaves the pipeline and releases the lock."""

    __slots__ = ("_binary", "_debt", "_lock", "_sql", "wire")

    def __init__(self, wire: AsyncWire, sql: str, binary: bool) -> None:
        self.wire, self._sql, self._binary = wire, sql, binary
        self._lock: Any = None
        #: The check the connection is owed, paid by the answer to the BEGIN sent first (see `_wire.owed`).
        self._debt: owed.Owed | None = None

    def _sent(self) -> bool:
        """Send what is read (in pipeline mode), unless psycopg has not prepared it: whether it was sent."""
        raise NotImplementedError

    def _done(self) -> bool:
        """Whether everything sent has been read, up to the pipeline's Sync."""
        raise NotImplementedError

    def _light(self) -> bool:
        """Whether what is sent goes at once (`owed.light`): the answer to a BEGIN sent first can pay the check the
        connection is owed."""
        return True

    def _ended(self) -> None:
        """Once the read is over, or left."""

    async def __aenter__(self) -> Self | None:
        wire = self.wire
        if not wire._tested and not await wire.self_test():
            return None
        lock = internals.lock(wire.conn)
        await lock.acquire()
        try:
            if wire.pgconn in owed.owed and not self._light():
                await settle(wire.pgconn)  # slow to send: the check made first, as the pool would have
            sent = self._sent()
            if sent and self._debt is not None:
                await answered(wire.pgconn, self._debt)
        except BaseException:
            try:
                await wire._stopped()  # a send that failed, or a check unanswered: what is raised is its error
            finally:
                lock.release()
            raise
        if not sent:
            lock.release()
            return None
        self._lock = lock
        return self

    def __aiter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        lock, self._lock = self._lock, None
        if lock is None:  # nothing was sent
            return
        wire = self.wire
        pgconn = wire.pgconn
        wire._open = False
        left = not self._done() and pgconn.status == _CONNECTION_OK
        try:
            if True:  # ASYNC
                if flight.awaited(wire._joined):  # nothing is stopped, so that no statement of theirs is
                    reads = flight.deliver if self._done() else flight.drained
                    await finish(reads(pgconn, wire._joined, wire._waits))
                    left = False
            if left:
                if True:  # ASYNC
                    if pgconn.transaction_status == _ACTIVE:  # cancelled or interrupted while the server works
                        await finish(wire._stop())
                    else:
                        await finish(wire._rest())
                else:
                    wire._rest()
            if True:  # ASYNC
                if wire._joined:  # of calls cancelled meanwhile: read, and dropped
                    await finish(flight.deliver(pgconn, wire._joined, wire._waits))
        finally:
            try:
                if pgconn.status == _CONNECTION_OK:  # not if the fallback, or the stop, closed it
                    pgconn.exit_pipeline_mode()
            finally:
                lock.release()
                self._ended()


class AsyncChunks(_AsyncRead):
    """A statement's rows read through a wire in chunks of `CHUNK` as they come: each list the chunks that came
    (`BaseWire.use_chunk` reads one); then `end`, the result that ends the rows (none of them in it: it has the
    columns only). While the caller makes values of the chunks given, the cyclic garbage
    collector is paused (see `generators.ChunksRead`)."""

    __slots__ = ("_params", "_read", "end")

    def __init__(self, wire: AsyncWire, sql: str, params: Sequence[Any], binary: bool) -> None:
        super().__init__(wire, sql, binary)
        self._params = params
        self._read = ChunksRead()
        self.end: pq.abc.PGresult | None = None

    def _sent(self) -> bool:
        # A transaction to begin first: through a cursor, which sends the BEGIN
        if begin_for(self.wire.conn) is not None:
            return False
        return self.wire._send(self._sql, self._params, self._binary, chunked=True)

    def _done(self) -> bool:
        return self._read.done

    def _ended(self) -> None:
        self._read.resume()

    async def __anext__(self) -> list[pq.abc.PGresult]:
        read, wire = self._read, self.wire
        if not read.done:
            ready = await wire._wait(chunks(wire.pgconn, read, wire._waits), list)
            if ready:
                return ready
        read.resume()
        if self.end is None:
            self.end = wire._chunked_result(self._sql, read, self._binary)
        raise StopAsyncIteration


class AsyncBatchResults(_AsyncRead):
    """A batch's results read through a wire as they come: each list the executions whose results came, as their
    index and their result, where they succeeded (`BaseWire.use` reads one); then `results`, one per execution.
    Nothing is sent unless psycopg has prepared the statement for every parameter set's types."""

    __slots__ = ("_joinable", "_paramsets", "_read", "results")

    def __init__(
        self, wire: AsyncWire, sql: str, paramsets: Sequence[Sequence[Any]], binary: bool, *, joinable: bool = False
    ) -> None:
        super().__init__(wire, sql, binary)
        self._paramsets = paramsets
        #: Whether calls of the session started meanwhile may send their statements after the batch's (see
        #: `AsyncWire.join`): read once the batch is.
        self._joinable = joinable
        self._read = BatchRead(len(paramsets) + 1)
        self.results: list[pq.abc.PGresult] = []

    def _light(self) -> bool:
        return owed.light(self._paramsets, sets=True)

    def _sent(self) -> bool:
        wire = self.wire
        pgconn = wire.pgconn
        begin = begin_for(wire.conn)
        sends = None if begin is not None and not FOLDS else batch.prepared(wire, self._sql, self._paramsets)
        if sends is None:
            return False
        pgconn.enter_pipeline_mode()
        if begin is not None:  # the transaction begins with the batch, in its pipeline
            send_begin(pgconn, begin)
            self._read.begin = True
            self._debt = owed.owed.pop(pgconn, None)
        batch.send(pgconn, sends, self._binary)
        wire._open = self._joinable
        return True

    def _done(self) -> bool:
        return self._read.done

    async def __anext__(self) -> list[tuple[int, pq.abc.PGresult]]:
        read, wire = self._read, self.wire
        if read.done:
            raise StopAsyncIteration
        ready = await wire._wait(executions(wire.pgconn, read, wire._waits), list)
        if read.done:
            wire._open = False
            if True:  # ASYNC
                if wire._joined:
                    await finish(flight.deliver(wire.pgconn, wire._joined, wire._waits))
            self.results = batch.results(wire, self._sql, read)
            if not ready:
                raise StopAsyncIteration
        return ready
