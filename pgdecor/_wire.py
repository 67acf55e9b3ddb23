"""The per-call path once a statement is known: the prepared statement executed through libpq directly.

psycopg's cursors serve every kind of query; per call `execute` converts the query, consults the prepare manager,
dumps the parameters and keeps the results for fetching, and `AsyncCursor.execute` also registers the socket with
the event loop and unregisters it again (two system calls) under an interrupt-check timer. For a statement pgdecor
has already run through a cursor (so its result layout is known and checked), a `Wire` does only what such a call
needs: dump the parameters with the connection's adapters, execute the statement psycopg prepared for them, and
read its result, with psycopg's own C wait (sync), or watching a duplicate of the socket registered with the event
loop once per session (`AsyncWire`). Measured: ~15% more calls/s than a cursor, ~20% less client CPU.

Everything else stays psycopg's: the prepared statements (a wire only executes those the connection's prepare
manager holds, so they are kept, evicted and discarded by psycopg's rules; when one is missing the call goes
through a cursor asking psycopg to prepare it), the adapters with their dumpers and loaders (`Transformer`), the
error classes, the notice and notification handlers, the connection lock, transactions, and stopping the statement
on the server when the call is interrupted or its task cancelled. A connection in pipeline mode, one whose cursors
a tool wraps (tracing, query logging), and streams keep using cursors. With prepared statements off
(``prepare_threshold = None``, as behind PgBouncer) statements are sent unnamed. A batch (``.many()``) of a prepared
statement is pipelined: every execution sent, then one Sync, its results read as they come.

A wire asks psycopg's prepare manager what a cursor would (the statement's name under psycopg's own key) and tells
it of each execution (`PrepareManager.maybe_add_to_cache`, and `validate` for what a command invalidates), so
that psycopg's LRU order and invalidation rules hold as they are, in whichever psycopg is installed. The parts of
psycopg used that are not its documented API (the placeholder conversion, the prepare manager, the connection's
wait and its generators) are looked up at import, pinned by tests/test_psycopg_contract.py, and checked by what
they do before a connection's first call (`Wire.self_test`): on any difference every call goes through cursors,
with one WARNING. Never a wrong result; at worst, a slower one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import weakref
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, Connection, pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import error_from_result
from psycopg.rows import tuple_row

from . import _poolers as poolers
from ._counters import counters
from ._shield import CANCEL_TIMEOUT as _CANCEL_TIMEOUT
from ._shield import finish

__all__ = ["AsyncWire", "Wire", "switch", "usable"]

logger = logging.getLogger("pgdecor")

_OFF = pq.PipelineStatus.OFF
_ACTIVE = pq.TransactionStatus.ACTIVE
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
T = TypeVar("T")

#: psycopg's placeholder conversion (%s, %(name)s, %b, %t → $n, cached), so that both paths read SQL alike and
#: key prepared statements alike; its generator that flushes a query and reads every result (in C), and the async
#: wait that drives it on the connection's own socket (to read what remains of a cancelled statement).
_query2pg: Callable[[bytes, str], tuple[bytes, list[PyFormat], Any, Any]]
_execute: Callable[[pq.abc.PGconn], Any]
_wait_async: Callable[[Any, int], Awaitable[Any]]
_YES: Any = None
_NO: Any = None
try:
    from psycopg import _preparing, _queries, generators, waiting

    _query2pg = _queries._query2pg
    _execute = generators.execute
    _wait_async = waiting.wait_async
    _YES, _NO = _preparing.Prepare.YES, _preparing.Prepare.NO
    #: What a generator driven by the connection's wait yields, and is sent back.
    _WAIT_R, _WAIT_W, _WAIT_RW = int(waiting.Wait.R), int(waiting.Wait.W), int(waiting.Wait.RW)
    _READY_R, _READY_W = int(waiting.Ready.R), int(waiting.Ready.W)
    _manager = _preparing.PrepareManager
    #: Whether this psycopg has what wires use; if not, every call goes through a cursor.
    _available = (
        callable(getattr(Connection, "wait", None))
        and isinstance(_manager()._names, dict)
        and all(callable(getattr(_manager, name, None)) for name in ("get", "maybe_add_to_cache", "validate"))
    )
except (ImportError, AttributeError):  # pragma: no cover - depends on psycopg
    _available = False
if sys.platform == "win32":  # pragma: no cover - a duplicated socket handle cannot be watched there
    _available = False


class _Switch:
    """Whether wires are used in this process: not where psycopg lacks what they use, not with ``PGDECOR_WIRE=off``
    in the environment, and no more once a wire's self-test has failed (see `Wire.self_test`)."""

    on = _available and os.environ.get("PGDECOR_WIRE", "").lower() not in ("0", "off", "no", "false")
    #: Why the self-test turned wires off, if it did.
    reason: str | None = None


switch = _Switch()

#: The connections whose wire has passed its self-test.
_tested: weakref.WeakSet[Any] = weakref.WeakSet()

_PREPARED_BY_NAME = "SELECT 1 FROM pg_catalog.pg_prepared_statements WHERE name = %s"

#: The statement of the self-test, and its arguments: a value of a type psycopg sends in binary, one in text.
_PROBE = "SELECT %s::int8 AS pgdecor_wire_probe, %s::text AS t"
_PROBE_ARGS = (4_611_686_018_427_387_904, "pgdecor wire \u2713")

#: (SQL, encoding) → the SQL with $n placeholders, and the format each placeholder asks for.
_converted: dict[tuple[str, str], tuple[bytes, list[PyFormat]]] = {}


def usable(conn: Connection[Any] | AsyncConnection[Any]) -> bool:
    """Whether calls on *conn* can go through a wire now (not while the user runs a pipeline on it, nor when a
    tool wraps psycopg's cursors: tracing, query logging and comments see every call only through cursors)."""
    return switch.on and conn.pgconn.pipeline_status == _OFF and conn.cursor_factory in _PLAIN_CURSORS


_PLAIN_CURSORS = (psycopg.Cursor, psycopg.AsyncCursor)


class _Query:
    """What psycopg's prepare manager keys a statement by (a `PostgresQuery`'s ``query`` and ``types``): one per
    wire, refilled by each call."""

    __slots__ = ("query", "types")

    def __init__(self) -> None:
        self.query = b""
        self.types: tuple[int, ...] = ()


def _groups(pgconn: pq.abc.PGconn, count: int) -> Generator[int, int, list[list[pq.abc.PGresult]]]:
    """Flush a pipeline, then read its *count* groups of results (the last one the Sync's): a generator of what to
    wait for, as psycopg's own, so that the connection's wait (sync) or the event loop (`AsyncWire`) drives it."""
    while pgconn.flush():
        if (yield _WAIT_RW) & _READY_R:
            pgconn.consume_input()
    groups: list[list[pq.abc.PGresult]] = []
    group: list[pq.abc.PGresult] = []
    while len(groups) < count:
        while pgconn.is_busy():
            if (yield _WAIT_R) & _READY_R:
                pgconn.consume_input()
        res = pgconn.get_result()
        if res is None:
            groups.append(group)
            group = []
        elif res.status == _PIPELINE_SYNC:
            groups.append([res])
        else:
            group.append(res)
    return groups


def _probe_result(res: pq.abc.PGresult, rows: list[Any]) -> tuple[Any, ...]:
    """What the self-test compares: the probe's column types and its rows."""
    return tuple(res.ftype(i) for i in range(res.nfields)), rows


def _self_test_problem(expected: tuple[Any, ...], got: tuple[Any, ...] | None) -> str | None:
    if got is None:
        return "psycopg prepared the probe statement, but the wire does not find it as psycopg names it"
    if got != expected:
        return f"the probe statement's result differs from the cursor's: {got!r}, not {expected!r}"
    return None


def _turn_off(reason: str) -> None:
    """A wire's self-test found it would not do what psycopg does: every call goes through cursors from now on."""
    if switch.on:
        switch.on = False
        switch.reason = reason
        counters.add("wire_disabled")
        logger.warning("pgdecor: calls go through psycopg's cursors from now on: %s", reason)


class Wire:
    """One session's lean path on one connection. It quacks enough like a cursor (``pgresult``, ``adapters``,
    ``fetchone``, ``fetchmany``) for the leak guard, for building a result layout and for reading the rows."""

    __slots__ = (
        "_count",
        "_key",
        "_pgq",
        "_pos",
        "_prep",
        "_tested",
        "_tx",
        "adapters",
        "conn",
        "manager",
        "name",
        "pgconn",
        "pgresult",
    )

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
        #: The statement of the call being made, as psycopg's prepare manager keys it, and what the manager said
        #: of it (psycopg's ``Prepare``).
        self._pgq = _Query()
        self._key: tuple[bytes, tuple[int, ...]] = (b"", ())
        self._prep: Any = None
        #: Whether the connection's wire has passed its self-test (`self_test`).
        self._tested = conn in _tested

    def execute(self, sql: str, params: Sequence[Any], binary: bool) -> pq.abc.PGresult | None:
        """Run *sql* (psycopg placeholders) with *params*; its result, or raise psycopg's error for it. None, with
        nothing sent, when psycopg has not prepared the statement for these parameter types (yet, or any more):
        run it through a cursor with ``prepare=True`` then."""
        if not self._tested and not self.self_test():
            return None
        conn = self.conn
        with conn.lock:
            if not self._send(sql, params, binary):
                return None
            # The connection's wait: psycopg's C poll loop, stopping the statement on the server on Ctrl-C.
            results = conn.wait(_execute(self.pgconn))
        return self._result(sql, results)

    def execute_many(self, sql: str, paramsets: Sequence[Sequence[Any]], binary: bool) -> list[Any] | None:
        """Run *sql* once per parameter set, pipelined: every execution of psycopg's prepared statement sent at once,
        then one Sync, in one round trip. The results in order, or raise psycopg's error for the first that failed
        (the ones after it were skipped by the server); None, with nothing sent, if psycopg has not prepared the
        statement for every set's parameter types: run them through a cursor's ``executemany`` then."""
        if not self._tested and not self.self_test():
            return None
        conn = self.conn
        with conn.lock:
            batch = self._batch(sql, paramsets, binary)
            if batch is None:
                return None
            pgconn = self.pgconn
            pgconn.enter_pipeline_mode()
            try:
                batch()
                groups = conn.wait(_groups(pgconn, len(paramsets) + 1))
            finally:
                pgconn.exit_pipeline_mode()
        return self._results(sql, groups)

    def self_test(self) -> bool:
        """Before the first call through a connection's wire: check that it does what psycopg would, by running a
        statement psycopg has prepared through the wire and comparing the result with the cursor's, inside a
        savepoint (a failure leaves the session's transaction as it was). On any difference, wires are turned
        off for the process (`_turn_off`): calls then go through cursors. A database error (a pooler that loses
        prepared statements) only keeps this wire unused. Return whether this wire may be used."""
        conn = self.conn
        try:
            with conn.transaction():
                cur = conn.cursor(binary=True, row_factory=tuple_row)
                cur.execute(_PROBE, _PROBE_ARGS, prepare=True)
                expected = _probe_result(cur.pgresult, cur.fetchall())
                self._tested = True  # the probe itself goes through `execute`
                res = self.execute(_PROBE, _PROBE_ARGS, True)
                problem = _self_test_problem(expected, None if res is None else _probe_result(res, self.fetchmany(2)))
                if problem is None and self.name is not None and not poolers.behind_pooler_seen(conn):
                    known = conn.execute(_PREPARED_BY_NAME, [self.name.decode()]).fetchone()
                    problem = None if known else f"the server has no prepared statement {self.name!r}"
        except psycopg.Error as err:
            return self._failed_on_server(err)
        return self._passed(problem)

    def _failed_on_server(self, err: psycopg.Error) -> bool:
        """The self-test's statement failed on the server (a pooler that loses prepared statements, a connection
        lost): rolled back to its savepoint, it says nothing of psycopg. This call goes through a cursor."""
        self._tested = False
        logger.info("pgdecor: a call goes through a cursor: the wire's self-test failed on the server: %s", err)
        return False

    def _passed(self, problem: str | None) -> bool:
        self._tested = problem is None
        if problem is not None:
            _turn_off(f"a wire's self-test failed: {problem}")
            return False
        _tested.add(self.conn)
        return True

    def close(self) -> None:
        """Nothing to let go of: the sync path borrows nothing from the connection."""

    # -- shared by both -------------------------------------------------------------------------------------

    def _send(self, sql: str, params: Sequence[Any], binary: bool) -> bool:
        """Send *sql* with *params* (under the connection's lock, so that the statement's name is still good when
        it arrives): the statement psycopg prepared for their types, or the query unnamed if psycopg prepares
        nothing. False, with nothing sent, if psycopg should prepare it first (or has maintenance to do). The
        statement is looked up as psycopg's prepare manager keys it, which the self-test checks."""
        tx = self._tx
        query, formats = self._convert(sql)
        dumped = tx.dump_sequence(params, formats)
        manager = self.manager
        self._key = key = (query, tx.types or ())
        if manager.prepare_threshold is None:
            self.name, self._prep = None, _NO
            self.pgconn.send_query_params(query, dumped, tx.types, tx.formats, binary)
            return True
        if manager._to_flush:  # statements to deallocate first: a cursor does that
            return False
        self.name = name = manager._names.get(key)
        if name is None:
            return False
        self._prep = _YES
        self.pgconn.send_query_prepared(name, dumped, tx.formats, binary)
        return True

    def _result(self, sql: str, results: Sequence[pq.abc.PGresult]) -> pq.abc.PGresult:
        """The call's result, once psycopg's prepare manager has seen it as after a cursor's execution (its
        LRU order, and whether the command invalidates its statements); or psycopg's error for it."""
        manager = self.manager
        names = manager._names
        if self.name is None or next(reversed(names), None) != self._key:  # else the most recent already
            pgq = self._pgq
            pgq.query, pgq.types = self._key
            key = manager.maybe_add_to_cache(pgq, self._prep, self.name or b"")
            if key is not None:
                manager.validate(key, self._prep, self.name or b"", results)
        if not results:
            raise psycopg.InternalError("got no result from the query")
        res = results[0]
        status = res.status
        if status == _FATAL_ERROR:
            raise error_from_result(res, encoding=self._tx.encoding)
        if status not in (_TUPLES_OK, _COMMAND_OK):
            raise psycopg.InterfaceError(f"unexpected result status from {sql!r}: {pq.ExecStatus(status).name}")
        self.pgresult = res
        self._count, self._pos = res.ntuples, 0
        self._tx.set_pgresult(res)
        return res

    def _batch(self, sql: str, paramsets: Sequence[Sequence[Any]], binary: bool) -> Callable[[], None] | None:
        """What sends a batch (in pipeline mode): every parameter set dumped and its prepared statement found first,
        so that nothing is sent unless all of them can be; None if psycopg should prepare one first."""
        tx, manager = self._tx, self.manager
        if manager.prepare_threshold is None or manager._to_flush:
            return None
        query, formats = self._convert(sql)
        pgq = self._pgq
        pgq.query = query
        names: dict[tuple[int, ...], bytes] = {}
        sends: list[tuple[bytes, Any, Any]] = []
        for params in paramsets:
            dumped = tx.dump_sequence(params, formats)
            types = tx.types or ()
            name = names.get(types)
            if name is None:
                pgq.types = types
                prep, name = manager.get(pgq)
                if prep is not _YES:
                    return None
                manager.maybe_add_to_cache(pgq, prep, name)  # the LRU order, as a cursor's execution keeps it
                names[types] = name
            sends.append((name, dumped, tx.formats))
        send = self.pgconn.send_query_prepared
        fmt = 1 if binary else 0

        def batch() -> None:
            for name, dumped, param_formats in sends:
                send(name, dumped, param_formats, fmt)
            self.pgconn.pipeline_sync()

        self.name = next(iter(names.values()), None)
        return batch

    def _results(self, sql: str, groups: list[list[pq.abc.PGresult]]) -> list[pq.abc.PGresult]:
        """The batch's results, one per execution; psycopg's error for the first that failed."""
        *groups, sync = groups
        if len(sync) != 1 or sync[0].status != _PIPELINE_SYNC:
            raise psycopg.InterfaceError(f"unexpected results at the end of a batch of {sql!r}")
        out = []
        for group in groups:
            res = group[0] if group else None
            if res is None:
                raise psycopg.InternalError("got no result from the query")
            status = res.status
            if status == _FATAL_ERROR:
                raise error_from_result(res, encoding=self._tx.encoding)
            if status not in (_TUPLES_OK, _COMMAND_OK):
                raise psycopg.InterfaceError(f"unexpected result status from {sql!r}: {pq.ExecStatus(status).name}")
            out.append(res)
        return out

    def use(self, res: pq.abc.PGresult, *, same_columns: bool) -> None:
        """Read *res* next (one of a batch's results) with `fetchone` and `fetchmany`; with *same_columns* (a
        prepared statement's next result) the loaders of the last one serve."""
        self.pgresult = res
        self._count, self._pos = res.ntuples, 0
        self._tx.set_pgresult(res, set_loaders=not same_columns)

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
        if not self._tested and not await self.aself_test():
            return None
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
        return self._result(sql, [] if first is None else [first])

    async def execute_many(  # type: ignore[override]
        self, sql: str, paramsets: Sequence[Sequence[Any]], binary: bool
    ) -> list[Any] | None:
        """As `Wire.execute_many`, awaited."""
        if not self._tested and not await self.aself_test():
            return None
        pgconn = self.pgconn
        lock = self.conn.lock
        await lock.acquire()
        try:
            batch = self._batch(sql, paramsets, binary)
            if batch is None:
                return None
            pgconn.enter_pipeline_mode()
            try:
                batch()
                groups = await self._drive(_groups(pgconn, len(paramsets) + 1))
            finally:
                pgconn.exit_pipeline_mode()
        except BaseException:
            if pgconn.transaction_status == _ACTIVE:  # cancelled or interrupted while the server works
                await finish(self._stop())
            raise
        finally:
            lock.release()
        return self._results(sql, groups)

    async def _drive(self, gen: Generator[int, int, T]) -> T:
        """Run a generator of waits (as psycopg's) on the event loop, watching the wire's socket."""
        try:
            wait = next(gen)
            while True:
                if wait == _WAIT_RW:  # writing, and reading what the server sends meanwhile: it may wait for that
                    wait = gen.send(await self._either())
                elif wait & _WAIT_W:
                    await self._writable()
                    wait = gen.send(_READY_W)
                else:
                    await self._readable()
                    wait = gen.send(_READY_R)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _either(self) -> int:
        """Wait until the socket is readable or writable; say which."""
        loop = self._loop
        self._fut = readable = loop.create_future()
        if not self._armed:
            loop.add_reader(self._fd, self._wake)
            self._armed = True
        writable: asyncio.Future[None] = loop.create_future()

        def wake_writer() -> None:
            if not writable.done():
                writable.set_result(None)

        loop.add_writer(self._fd, wake_writer)
        try:
            await asyncio.wait([readable, writable], return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_writer(self._fd)
            self._fut = None
        return (_READY_R if readable.done() else 0) | (_READY_W if writable.done() else 0)

    async def _readable(self) -> None:
        self._fut = fut = self._loop.create_future()
        if not self._armed:
            self._loop.add_reader(self._fd, self._wake)
            self._armed = True
        try:
            await fut
        finally:
            self._fut = None

    async def aself_test(self) -> bool:
        """As `Wire.self_test`, awaited."""
        conn = self.conn
        try:
            async with conn.transaction():
                cur = conn.cursor(binary=True, row_factory=tuple_row)
                await cur.execute(_PROBE, _PROBE_ARGS, prepare=True)
                expected = _probe_result(cur.pgresult, await cur.fetchall())
                self._tested = True
                res = await self.execute(_PROBE, _PROBE_ARGS, True)
                problem = _self_test_problem(expected, None if res is None else _probe_result(res, self.fetchmany(2)))
                if problem is None and self.name is not None and not poolers.behind_pooler_seen(conn):
                    found = await conn.execute(_PREPARED_BY_NAME, [self.name.decode()])
                    problem = None if await found.fetchone() else f"the server has no prepared statement {self.name!r}"
        except psycopg.Error as err:
            return self._failed_on_server(err)
        return self._passed(problem)

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
            # Read what came, and wake the waiting call only once a whole result is in: a result often arrives in
            # two reads, and waking the task costs more than reading.
            pgconn = self.pgconn
            try:
                pgconn.consume_input()
                if pgconn.is_busy():
                    return
            except psycopg.Error:  # the connection broke: the call meets the error itself
                pass
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
