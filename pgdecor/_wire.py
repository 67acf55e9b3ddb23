"""The per-call path once a statement is known: the prepared statement executed through libpq directly.

psycopg's cursors serve every kind of query; per call `execute` converts the query, consults the prepare manager,
dumps the parameters and keeps the results for fetching, and `AsyncCursor.execute` also registers the socket with
the event loop and unregisters it again (two system calls) under an interrupt-check timer. For a statement pgdecor
has already run through a cursor (so its result layout is known and checked), a `Wire` does only what such a call
needs: dump the parameters with the connection's adapters, execute the statement psycopg prepared for them, and
read its result, with psycopg's own C wait (sync), or watching a duplicate of the socket registered with the event
loop once per session (`AsyncWire`). Measured: ~10% more calls/s than a cursor, ~20% less client CPU.

Everything else stays psycopg's: the prepared statements (a wire only executes those the connection's prepare
manager holds, so they are kept, evicted and discarded by psycopg's rules; when one is missing the call goes
through a cursor asking psycopg to prepare it), the adapters with their dumpers and loaders (`Transformer`), the
error classes, the notice and notification handlers, the connection lock, transactions, and stopping the statement
on the server when the call is interrupted or its task cancelled. A connection in pipeline mode, and streams, keep
using cursors. With prepared statements off (``prepare_threshold = None``, as behind PgBouncer) statements are sent
unnamed.

The parts of psycopg used here that are not its documented API (the placeholder conversion, the prepare manager's
names, the connection's wait, the execute generator and its async wait) are looked up at import; without them
every call goes through a cursor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection, Connection, pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import error_from_result

from ._shield import CANCEL_TIMEOUT as _CANCEL_TIMEOUT
from ._shield import finish

__all__ = ["AsyncWire", "Wire", "usable"]

logger = logging.getLogger("pgdecor")

_OFF = pq.PipelineStatus.OFF
_ACTIVE = pq.TransactionStatus.ACTIVE
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR

#: Commands after which psycopg forgets (and deallocates) its prepared statements: the objects they use may be
#: gone or changed. A `Wire` running one tells psycopg, as its cursors would.
_INVALIDATES = re.compile(rb"^(?:DROP|ALTER|ROLLBACK|DISCARD ALL|DEALLOCATE ALL)\b").match

#: psycopg's placeholder conversion (%s, %(name)s, %b, %t → $n, cached), so that both paths read SQL alike and
#: key prepared statements alike; its generator that flushes a query and reads every result (in C), and the async
#: wait that drives it on the connection's own socket (to read what remains of a cancelled statement).
_query2pg: Callable[[bytes, str], tuple[bytes, list[PyFormat], Any, Any]]
_execute: Callable[[pq.abc.PGconn], Any]
_wait_async: Callable[[Any, int], Awaitable[Any]]
try:
    from psycopg import _preparing, _queries, generators, waiting

    _query2pg = _queries._query2pg
    _execute = generators.execute
    _wait_async = waiting.wait_async
    #: Whether this psycopg has what wires use; if not, every call goes through a cursor.
    _AVAILABLE = callable(getattr(Connection, "wait", None)) and isinstance(_preparing.PrepareManager()._names, dict)
except (ImportError, AttributeError):  # pragma: no cover - depends on psycopg
    _AVAILABLE = False
if sys.platform == "win32":  # pragma: no cover - a duplicated socket handle cannot be watched there
    _AVAILABLE = False
if os.environ.get("PGDECOR_WIRE", "").lower() in ("0", "off", "no", "false"):  # every call through a cursor
    _AVAILABLE = False

#: (SQL, encoding) → the SQL with $n placeholders, and the format each placeholder asks for.
_converted: dict[tuple[str, str], tuple[bytes, list[PyFormat]]] = {}


def usable(conn: Connection[Any] | AsyncConnection[Any]) -> bool:
    """Whether calls on *conn* can go through a wire now (not while the user runs a pipeline on it)."""
    return _AVAILABLE and conn.pgconn.pipeline_status == _OFF


class Wire:
    """One session's lean path on one connection. It quacks enough like a cursor (``pgresult``, ``adapters``,
    ``fetchone``, ``fetchmany``) for the leak guard, for building a result layout and for reading the rows."""

    __slots__ = ("_count", "_pos", "_tx", "adapters", "conn", "manager", "name", "pgconn", "pgresult")

    def __init__(self, conn: Connection[Any] | AsyncConnection[Any]) -> None:
        self.conn: Any = conn
        self.pgconn = conn.pgconn
        self.adapters = conn.adapters
        #: psycopg's prepare manager of the connection, and the name of the prepared statement that made the last
        #: result (None: sent unnamed). A name is never given to another statement on the same connection.
        self.manager: Any = conn._prepared
        self.name: bytes | None = None
        #: The last result, as a cursor's ``pgresult``.
        self.pgresult: pq.abc.PGresult | None = None
        #: Rows in the last result, and the next one to read.
        self._count = self._pos = 0
        self._tx = Transformer(conn)

    def execute(self, sql: str, params: Sequence[Any], binary: bool) -> pq.abc.PGresult | None:
        """Run *sql* (psycopg placeholders) with *params*; its result, or raise psycopg's error for it. None, with
        nothing sent, when psycopg has not prepared the statement for these parameter types (yet, or any more):
        run it through a cursor with ``prepare=True`` then."""
        conn = self.conn
        with conn.lock:
            if not self._send(sql, params, binary):
                return None
            # The connection's wait: psycopg's C poll loop, stopping the statement on the server on Ctrl-C.
            results = conn.wait(_execute(self.pgconn))
        return self._result(sql, results[0] if results else None)

    def close(self) -> None:
        """Nothing to let go of: the sync path borrows nothing from the connection."""

    # -- shared by both -------------------------------------------------------------------------------------

    def _send(self, sql: str, params: Sequence[Any], binary: bool) -> bool:
        """Send *sql* with *params* (under the connection's lock, so that the statement's name is still good when
        it arrives): the statement psycopg prepared for their types, or the query unnamed if psycopg prepares
        nothing. False, with nothing sent, if psycopg should prepare it first."""
        tx = self._tx
        query, formats = self._convert(sql)
        dumped = tx.dump_sequence(params, formats)
        manager = self.manager
        if manager.prepare_threshold is None:
            self.name = None
            self.pgconn.send_query_params(query, dumped, tx.types, tx.formats, binary)
            return True
        self.name = name = manager._names.get((query, tx.types or ()))
        if name is None:
            return False
        self.pgconn.send_query_prepared(name, dumped, tx.formats, binary)
        return True

    def _result(self, sql: str, res: pq.abc.PGresult | None) -> pq.abc.PGresult:
        if res is None:
            raise psycopg.InternalError("got no result from the query")
        status = res.status
        if status == _COMMAND_OK:
            command = res.command_status
            if command and _INVALIDATES(command):
                self.manager.clear()
        elif status == _FATAL_ERROR:
            raise error_from_result(res, encoding=self._tx.encoding)
        elif status != _TUPLES_OK:
            raise psycopg.InterfaceError(f"unexpected result status from {sql!r}: {pq.ExecStatus(status).name}")
        self.pgresult = res
        self._count, self._pos = res.ntuples, 0
        self._tx.set_pgresult(res)
        return res

    def fetchone(self) -> tuple[Any, ...] | None:
        """The last result's next row, as a cursor's ``fetchone``."""
        pos = self._pos
        if pos >= self._count:
            return None
        self._pos = pos + 1
        return self._tx.load_row(pos, tuple)

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        """The last result's next *size* rows at most, as a cursor's ``fetchmany``."""
        pos = self._pos
        self._pos = stop = min(pos + size, self._count)
        return self._tx.load_rows(pos, stop, tuple)

    def _convert(self, sql: str) -> tuple[bytes, list[PyFormat]]:
        encoding = self._tx.encoding
        found = _converted.get((sql, encoding))
        if found is None:
            query, formats, _order, _parts = _query2pg(sql.encode(encoding), encoding)
            found = _converted[sql, encoding] = (query, formats)
        return found


class AsyncWire(Wire):
    """The lean path on an async connection, waiting through the event loop."""

    __slots__ = ("_armed", "_fd", "_fut", "_loop")

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        super().__init__(conn)
        self._loop = asyncio.get_running_loop()
        #: A duplicate of the connection's socket, which only this wire registers with the event loop: psycopg's
        #: own waits register and unregister the socket itself, so they never disturb this registration, and
        #: ``_armed`` knows whether it is in place. `close` closes it when the session gives the connection back.
        self._fd = os.dup(self.pgconn.socket)
        self._armed = False
        #: What `_wake` resolves when the socket is readable; None between reads.
        self._fut: asyncio.Future[None] | None = None

    async def execute(self, sql: str, params: Sequence[Any], binary: bool) -> pq.abc.PGresult | None:  # type: ignore[override]
        """As `Wire.execute`, awaited. Its wait is written out here rather than in a coroutine of its own: one
        coroutine less to make and to resume on every call."""
        pgconn = self.pgconn
        loop = self._loop
        lock = self.conn.lock
        await lock.acquire()
        try:
            if not self._send(sql, params, binary):
                return None
            while pgconn.flush():  # parameters larger than the socket buffer
                await self._writable()
            first: pq.abc.PGresult | None = None
            while True:
                while pgconn.is_busy():
                    self._fut = fut = loop.create_future()
                    if not self._armed:
                        loop.add_reader(self._fd, self._wake)
                        self._armed = True
                    try:
                        await fut
                    finally:
                        self._fut = None
                    pgconn.consume_input()
                res = pgconn.get_result()
                if res is None:
                    break
                if first is None:
                    first = res
        except BaseException:
            if pgconn.transaction_status == _ACTIVE:  # cancelled or interrupted while the server works
                await finish(self._stop())  # through the cancellations anyio repeats at every await
            raise
        finally:
            lock.release()
        if pgconn.notify_handler:
            while n := pgconn.notifies():
                pgconn.notify_handler(n)
        return self._result(sql, first)

    def close(self) -> None:
        """Stop watching the socket and close the duplicate: before the connection is given back."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        loop = self._loop
        if loop.is_closed():  # its selector is gone with it
            os.close(fd)
            return

        def release() -> None:
            if self._armed:
                self._armed = False
                loop.remove_reader(fd)
            os.close(fd)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop or not loop.is_running():
            release()
        else:  # the leak guard, ending the session from another thread
            loop.call_soon_threadsafe(release)

    def _wake(self) -> None:
        fut = self._fut
        if fut is None:
            # Readable with nobody waiting (psycopg reading a result of its own, or a notification between
            # calls): stop watching until the next call, or the loop would call this again and again.
            self._armed = False
            self._loop.remove_reader(self._fd)
        elif not fut.done():
            fut.set_result(None)

    async def _writable(self) -> None:
        fut = self._loop.create_future()
        self._loop.add_writer(self._fd, fut.set_result, None)
        try:
            await fut
        finally:
            self._loop.remove_writer(self._fd)
        self.pgconn.consume_input()

    async def _stop(self) -> None:
        """After the awaiting task was cancelled mid-statement: have the server stop it and read what remains,
        so that the connection can roll back and be reused, as psycopg does; close it if the server won't."""
        try:
            await self.conn.cancel_safe(timeout=_CANCEL_TIMEOUT)
            await asyncio.wait_for(_wait_async(_execute(self.pgconn), self.pgconn.socket), _CANCEL_TIMEOUT)
        except BaseException as ex:  # noqa: BLE001 - whatever stopped the stop, the connection state is unknown
            logger.warning("statement not stopped after cancellation (%s): closing the connection", type(ex).__name__)
            self.pgconn.finish()
