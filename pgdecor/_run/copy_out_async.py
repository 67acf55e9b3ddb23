"""A COPY out of a table in an async session: its rows read from libpq a batch at a time (`AsyncCopyReader`) as its
stream (`AsyncCopyStream`) is iterated, and which sessions' connections a COPY holds meanwhile (`busy`).

The session's lock and the connection's are held only while a batch is read: until the stream ends, the connection is
busy with it, and a call of the session's meanwhile fails (libpq: "another command is already in progress") rather
than waits. In a transaction, a COPY out runs in a savepoint of its own: closing its stream early (or ending its
session before the end) has the server stop sending, and rolls back to it, so that the session's transaction goes
on, sound.

This is the async source; `_run.copy_out` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import asyncio
import logging
import selectors
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, pq
from psycopg.adapt import Transformer
from psycopg.errors import error_from_result

from pgdecor._errors import Error, add_note
from pgdecor._plan.copy import CopyPlan
from pgdecor._rows.copy_format import BINARY_HEADER, BINARY_TRAILER, parse_binary, parse_text
from pgdecor._rows.copy_out import RowsOut
from pgdecor._rows.streams import BATCH_SIZE
from pgdecor._session.state import AsyncState
from pgdecor._wire.guard import copy_formats
from pgdecor._wire.shield import finish
from pgdecor._wire.wire_base import begin_for

from .stream_async import AsyncBatchStream

__all__ = ["AsyncCopyReader", "AsyncCopyStream", "busy", "check_free"]

logger = logging.getLogger("pgdecor")

T = TypeVar("T")

_OFF = pq.PipelineStatus.OFF
_INTRANS = pq.TransactionStatus.INTRANS
_COPY_OUT = pq.ExecStatus.COPY_OUT
_FATAL = pq.ExecStatus.FATAL_ERROR

#: The savepoint a COPY out runs in, sent in the COPY's own message, so that stopping it early leaves the session's
#: transaction sound; released at its end, rolled back to when stopped.
_SAVEPOINT = b"SAVEPOINT pgdecor_copy; "
_RELEASE = b"RELEASE SAVEPOINT pgdecor_copy"
_UNDO = b"ROLLBACK TO SAVEPOINT pgdecor_copy; RELEASE SAVEPOINT pgdecor_copy"

#: The sessions (by their lock, which joined sessions share) whose connection a COPY holds, and what holds it (said
#: in words, and the id of a COPY out's stream), until it ends.
busy: weakref.WeakKeyDictionary[Any, tuple[str, int]] = weakref.WeakKeyDictionary()

if True:  # ASYNC
    _WITH = "async with "
else:
    _WITH = "with "


def check_free(sess: AsyncState, plan: CopyPlan) -> None:
    """Raise unless the session's connection is free of another COPY (a COPY out's stream not read to its end)."""
    holder = busy.get(sess.lock)
    if holder is not None:
        msg = (
            f"{plan.stub}(): the session's connection is busy with {holder[0]}; read the stream to its end, or close "
            f"it (`{_WITH}stream:`), before the next COPY of the session, or copy in another session"
        )
        raise Error(msg)


class AsyncCopyReader:
    """The rows of one COPY out, read from libpq a batch at a time (see the module docstring)."""

    __slots__ = ("_binary", "_conn", "_first", "_parse", "_savepoint", "_tx", "ended", "pgresult")

    def __init__(self, conn: AsyncConnection[Any], rows: RowsOut) -> None:
        self._conn = conn
        tx = Transformer(conn)
        tx.set_loader_types(rows.types, rows.format)
        self._tx = tx
        formats = copy_formats()
        self._parse: Callable[[Any, Any], tuple[Any, ...]]
        if formats is None:
            self._parse = parse_binary if rows.binary else parse_text
        else:
            self._parse = formats.parse_binary if rows.binary else formats.parse_text
        #: Binary COPY data begins with a header, in the message of the first row, and ends with a trailer.
        self._binary = self._first = rows.binary
        #: Whether the COPY runs in a savepoint of its own (in a transaction), which stopping it rolls back to.
        self._savepoint = False
        #: Whether the connection is out of the COPY (not begun yet, or over).
        self.ended = True
        #: The last result: the leak guard sees a stream's activity by its changing.
        self.pgresult: pq.abc.PGresult | None = None

    @property
    def conn(self) -> AsyncConnection[Any]:
        return self._conn

    async def start(self, statement: bytes) -> None:
        """Send the COPY (after a savepoint, in the same message, inside a transaction); return once the server
        has begun sending rows."""
        conn = self._conn
        pgconn = conn.pgconn
        if pgconn.pipeline_status != _OFF:
            msg = "a COPY cannot run inside `conn.pipeline()`; run it outside the pipeline block"
            raise Error(msg)
        # A session's transaction not begun yet begins in the same message.
        begin = begin_for(conn)
        self._savepoint = begin is not None or pgconn.transaction_status == _INTRANS
        async with conn.lock:
            sent = _SAVEPOINT + statement if self._savepoint else statement
            await self._send(sent if begin is None else begin + b"; " + sent)
            failed = None
            while (res := await self._result()) is not None:
                if res.status == _COPY_OUT:
                    # psycopg's text parser takes the number of columns from the result the transformer is given.
                    self._tx.set_pgresult(res, set_loaders=False)
                    self.pgresult = res
                    self.ended = False
                    return
                if res.status == _FATAL and failed is None:
                    failed = res
        assert failed is not None
        raise error_from_result(failed, encoding=conn.info.encoding)

    async def read(self, limit: int) -> list[Any]:
        """Up to *limit* rows (fewer only at the end), each a tuple of its loaded values."""
        rows: list[Any] = []
        if self.ended:
            return rows
        conn = self._conn
        pgconn, parse, tx = conn.pgconn, self._parse, self._tx
        get = pgconn.get_copy_data
        append = rows.append
        async with conn.lock:
            while len(rows) < limit:
                size, data = get(1)
                if size > 0:
                    if self._first:
                        self._first = False
                        data = _without_header(data)
                        if not len(data):
                            continue
                    if self._binary and len(data) == 2 and data == BINARY_TRAILER:
                        continue
                    append(parse(data, tx))
                elif size == 0:
                    await _ready(pgconn)
                    pgconn.consume_input()
                elif size == -1:
                    await self._end()
                    break
                else:
                    self.ended = True
                    raise psycopg.OperationalError(pgconn.get_error_message())
        return rows

    async def stop(self) -> None:
        """Stop the COPY before its end: what the server has sent is dropped and, if it has more to send, it is
        asked to stop; the transaction is then rolled back to the COPY's savepoint (it wrote nothing), so that
        the session goes on."""
        conn = self._conn
        pgconn = conn.pgconn
        asked = False
        async with conn.lock:
            while not self.ended:
                size, _ = pgconn.get_copy_data(1)
                if size > 0:
                    continue
                if size == 0:
                    if not asked:  # only once what has come is read: a COPY over needs no stopping
                        asked = True
                        await _cancel(conn)
                    await _ready(pgconn)
                    pgconn.consume_input()
                elif size == -1:
                    try:
                        await self._end()
                    except psycopg.errors.QueryCanceled:
                        if self._savepoint:
                            await self._run(_UNDO)
                else:
                    self.ended = True
                    raise psycopg.OperationalError(pgconn.get_error_message())

    async def _end(self) -> None:
        """After the last row: the COPY's own result (raised if an error), the end of the server's answer, and the
        savepoint released."""
        self.ended = True
        failed = None
        while (res := await self._result()) is not None:
            self.pgresult = res
            if res.status == _FATAL and failed is None:
                failed = res
        if failed is not None:
            raise error_from_result(failed, encoding=self._conn.info.encoding)
        if self._savepoint:
            await self._run(_RELEASE)

    async def _run(self, statement: bytes) -> None:
        """Run a statement of pgdecor's own, with no result, on the COPY's connection (whose lock is held)."""
        await self._send(statement)
        failed = None
        while (res := await self._result()) is not None:
            if res.status == _FATAL and failed is None:
                failed = res
        if failed is not None:
            raise error_from_result(failed, encoding=self._conn.info.encoding)

    async def _send(self, statement: bytes) -> None:
        pgconn = self._conn.pgconn
        pgconn.send_query(statement)
        while pgconn.flush():
            await _ready(pgconn, write=True)

    async def _result(self) -> pq.abc.PGresult | None:
        """The next result, once the server has sent it whole."""
        pgconn = self._conn.pgconn
        pgconn.consume_input()
        while pgconn.is_busy():
            await _ready(pgconn)
            pgconn.consume_input()
        return pgconn.get_result()


async def _cancel(conn: AsyncConnection[Any]) -> None:
    """Ask the server to stop the statement *conn* runs; if it cannot be asked, the rest is read instead."""
    try:
        await conn.cancel_safe()
    except psycopg.Error:
        logger.warning("pgdecor: could not ask the server to stop a COPY; its rest is read instead", exc_info=True)


def _without_header(data: Any) -> Any:
    """The first message of binary COPY data, without the header before its first row."""
    view = memoryview(data)
    if bytes(view[:11]) != BINARY_HEADER[:11]:
        msg = "the server's binary COPY data does not begin with COPY's signature"
        raise psycopg.DataError(msg)
    extension = int.from_bytes(view[15:19], "big")
    return view[19 + extension :]


async def _ready(pgconn: pq.abc.PGconn, *, write: bool = False) -> None:
    """Wait until the connection's socket can be read (or written)."""
    fd = pgconn.socket
    if True:  # ASYNC
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        (loop.add_writer if write else loop.add_reader)(fd, wake)
        try:
            await ready
        finally:
            (loop.remove_writer if write else loop.remove_reader)(fd)
    else:
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_WRITE if write else selectors.EVENT_READ)
            selector.select()


class AsyncCopyStream(AsyncBatchStream[T]):
    """The rows of a `copy_out` stub, read a batch at a time as they are iterated: until the stream ends, its
    session's connection is busy with the COPY. Closing it (`aclose`, or the end of its ``with`` block) stops the
    COPY on the server, so that the session's connection serves its next call; the session also does it as it
    ends."""

    __slots__ = ("_reader",)

    def __init__(
        self,
        stub: str,
        reader: AsyncCopyReader,
        make: Callable[[list[Any]], list[T]],
        lock: Any,
        open_streams: list[Any],
    ) -> None:
        super().__init__(stub, make, lock, open_streams)
        self._reader = reader

    def _last_result(self) -> object:
        """Its COPY's last result: the leak guard sees the stream in use by its changing."""
        return self._reader.pgresult

    async def _fetch(self) -> list[Any]:
        reader = self._reader
        try:
            return await finish(reader.read(BATCH_SIZE), statement_on=reader.conn)
        except psycopg.Error as err:
            add_note(err, f"{self._stub}: while reading the rows of its COPY")
            raise
        finally:
            if reader.ended:
                self._ended()

    def _ended(self) -> None:
        """The COPY has ended: the session's connection is free again."""
        holder = busy.get(self._lock)
        if holder is not None and holder[1] == id(self):
            del busy[self._lock]

    async def aclose(self) -> None:
        """Stop reading, and the COPY on the server."""
        self._drop(by_session=False)
        await self._finish_reading()

    async def _aend(self) -> None:
        """Close it as its session ends: using it afterwards raises `NoSessionError`. A database error while the
        rest is read is left to the session, whose transaction it aborted: the session rolls back, and says so."""
        self._drop(by_session=True)
        self._open = []  # the session's list, which holds this stream: no cycle through it
        try:
            await self._finish_reading()
        except psycopg.Error:
            logger.debug("pgdecor: %s: the rest of its COPY could not be read", self._stub, exc_info=True)

    async def _finish_reading(self) -> None:
        reader = self._reader
        try:
            if not reader.ended:
                await finish(reader.stop())
        finally:
            if reader.ended:
                self._ended()
