"""The per-call path once a statement is known: the prepared statement executed through libpq directly.

psycopg's cursors serve every kind of query; per call `execute` converts the query, consults the prepare manager,
dumps the parameters and keeps the results for fetching, and `AsyncCursor.execute` also registers the socket with
the event loop and unregisters it again (two system calls) under an interrupt-check timer. For a statement pgdecor
has already run through a cursor (so its result layout is known and checked), a wire does only what such a call
needs: dump the parameters with the connection's adapters, execute the statement psycopg prepared for them, and
read its result, with psycopg's own C wait (`Wire`), or watching a duplicate of the socket registered with the
event loop once per session (`AsyncWire`, `_wire.watch`). Measured: ~15% more calls/s than a cursor, ~20% less
client CPU.

Everything else stays psycopg's: the prepared statements (a wire only executes those the connection's prepare
manager holds, so they are kept, evicted and discarded by psycopg's rules; when one is missing the call goes
through a cursor asking psycopg to prepare it), the adapters with their dumpers and loaders (`Transformer`), the
error classes, the notice and notification handlers, the connection lock, transactions, and stopping the statement
on the server when the call is interrupted or its task cancelled. A connection in pipeline mode, one whose cursors
a tool wraps (tracing, query logging), and streams keep using cursors. With prepared statements off
(``prepare_threshold = None``, as behind PgBouncer) statements are sent unnamed. A batch (``.many()``) of a prepared
statement is pipelined: every execution sent, then one Sync, its results read as they come (`_wire.batch`). A stub
whose last result was large (`CHUNK` rows or more) has its next one read in chunks as the server sends them
(libpq's chunked rows mode, libpq 17 and later), each made into values while the rest arrives: measured, 100,000
rows into dataclasses ~1.2x as fast as psycopg's `fetchall` of tuples, which waits for the whole result. Both
reads (`_wire.reads_async`) are iterators of what came, a list at a time, which the caller makes into values while
the server sends the rest: what a wire reads flows up to its caller, which calls nothing back. A call of an async
session that other tasks call in too goes in a pipeline, with its own Sync (and the BEGIN of the session's
transaction before it, if due), so that the calls of the session started while it awaits its result can send theirs
after it (`_wire.flight`); any other call, only where its BEGIN goes with it.

What a wire does is written once: sending and making results in `_wire.wire_base`, reading as generators of what to
wait for (`_wire.generators`), as psycopg's own. `AsyncWire` is written here, and `Wire` (`_wire.wire`) generated
from it by tools/async_to_sync.py; how they wait is all that differs (`_wait`). The parts of psycopg used that are
not its documented API (the placeholder conversion, the prepare manager, the connection's wait) are looked up in
`_wire.internals` alone, pinned by tests/test_psycopg_contract.py, and checked by what they do before a connection's
first call (`self_test`): on any difference every call goes through cursors, with one WARNING. Should one of them
raise, or answer in another shape, in any call (`Drift`), the same: wires are off for the process, with one WARNING
naming it, and the call is made through a cursor if nothing was sent yet, or its result read with libpq's public
calls if it was (`_wire.fallback`). Never a wrong result; at worst, a slower one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, pq
from psycopg.rows import tuple_row

from . import flight, internals, owed, poolers
from .fallback import read_after
from .generators import Reading, piped, rest, results
from .guard import _PREPARED_BY_NAME, _PROBE, _PROBE_ARGS, _probe_result, _self_test_problem, switch, usable
from .internals import Drift
from .liveness_async import answered, settle
from .shield import CANCEL_TIMEOUT, finish
from .watch import SocketWatch
from .wire_base import CHUNK, CHUNKED_ROWS, FOLDS, BaseWire, begin_for, begun

__all__ = [
    "CHUNK",
    "CHUNKED_ROWS",
    "AsyncWire",
    "switch",
    "usable",
]

logger = logging.getLogger("pgdecor")

_ACTIVE = pq.TransactionStatus.ACTIVE
_CONNECTION_OK = pq.ConnStatus.OK
_PIPELINE_OFF = pq.PipelineStatus.OFF
T = TypeVar("T")


class AsyncWire(BaseWire):
    """One session's lean path on one connection: what `BaseWire` does, and its waits (`_wait`)."""

    __slots__: tuple[str, ...] = ("conn",)
    if True:  # ASYNC
        __slots__ = ("_joined", "_watch", "conn")

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        super().__init__(conn)
        self.conn = conn
        if True:  # ASYNC
            self._watch = self._waits = SocketWatch(conn.pgconn)
            #: The calls whose statements went after the one whose result is awaited (`join`).
            self._joined: list[flight.Joined] = []

    async def execute(self, sql: str, params: Sequence[Any], binary: bool, *, joinable: bool = False) -> bool:
        """Run *sql* (psycopg placeholders) with *params*, or raise psycopg's error for it; True once its result is
        read (`pgresult`, rows read with `fetchone`, `fetchmany`). False, with nothing sent, when psycopg has not
        prepared the statement for these parameter types (yet, or any more): run it through a cursor with
        ``prepare=True`` then. *joinable* (an async session's call): others of the session may send their statements
        after it while its result is awaited (`join`): a plain call's, not one in a savepoint of its own."""
        if not self._tested and not await self.self_test():
            return False
        lock = internals.lock(self.conn)
        await lock.acquire()
        try:
            pgconn = self.pgconn
            begin = begin_for(self.conn)
            # In a pipeline if its BEGIN goes first, or if others' statements may follow it (`join`): an async
            # session's calls only, none of a sync session's runs meanwhile.
            if True:  # ASYNC
                joinable = joinable and FOLDS and not self._probing
            else:
                joinable = False
            if begin is None and not joinable:  # the usual call: its statement alone
                if not self._send(sql, params, binary):
                    return False
                if True:  # ASYNC
                    read = await results(pgconn, self._waits)  # type: ignore[misc] # a generator-based coroutine
                else:
                    read = self._wait(results(pgconn, self._waits), list)
            else:
                in_pipeline = await self._piped(sql, params, binary, begin, joinable=joinable)
                if in_pipeline is None:
                    return False
                read = in_pipeline
        except BaseException:
            await self._stopped()
            raise
        finally:
            lock.release()
        self._made(sql, read, binary)
        return True

    async def _piped(
        self, sql: str, params: Sequence[Any], binary: bool, begin: bytes | None, *, joinable: bool
    ) -> list[pq.abc.PGresult] | None:
        """`execute`'s statement in a pipeline, after its *begin* if due, others' statements after it if *joinable*:
        its results, or None with nothing sent."""
        if begin is not None and not FOLDS:
            return None
        pgconn = self.pgconn
        if begin is not None and pgconn in owed.owed and not owed.light(params, sets=False):
            await settle(pgconn)  # a statement slow to send: the check made first, as the pool would have
        if not self._send(sql, params, binary, piped=True, begin=begin):
            return None
        # The pipeline's: the statement's results, or BEGIN's if it failed; BEGIN's answer pays the check the
        # connection is `owed`, if it is: by its deadline, else the connection is closed and the borrow's
        # `PoolTimeout` raised. Then the results of the statements other calls sent after it meanwhile (`join`), for
        # them, and the pipeline left.
        self._open = joinable
        if begin is not None and (debt := owed.owed.pop(pgconn, None)) is not None:
            await answered(pgconn, debt)
        groups = await self._wait(piped(pgconn, self._waits, 1 if begin is None else 2), list)
        self._open = False
        if True:  # ASYNC
            if self._joined:
                await finish(flight.deliver(pgconn, self._joined, self._waits))
        self._leave()
        return groups[0] if begin is None else begun(groups)

    if True:  # ASYNC

        @property
        def reading(self) -> bool:
            """Whether a call (or a batch) reads its results through the wire now, after which others may send their
            statements (`join`)."""
            return self._open

        def join(self, sql: str, params: Sequence[Any], binary: bool) -> flight.Joined | None:
            """Send *sql* with *params* at once, after the statement whose results a call of the session reads now
            (`execute`), in its pipeline; that call reads the results for it (`_wire.flight`). None, with nothing
            sent, where no call reads now, or where psycopg has not prepared the statement."""
            return flight.join(self, self.conn, self._joined, sql, params, binary=binary) if self._open else None

    async def _stopped(self) -> None:
        """After a call raised or was cancelled while its statement was under way: stop it on the server (async:
        psycopg's sync wait does that itself on Ctrl-C) and read what is left, then leave the pipeline it may have
        been read in; a connection that cannot leave it is closed, for its pool to replace."""
        self._open = False
        if True:  # ASYNC
            pgconn = self.pgconn
            try:
                if flight.awaited(self._joined):  # nothing is stopped, so that no statement of theirs is
                    await finish(flight.drained(pgconn, self._joined, self._waits))
                else:
                    if pgconn.transaction_status == _ACTIVE:  # cancelled or interrupted while the server works
                        await finish(self._stop())
                    if self._joined:  # of calls cancelled meanwhile: read, and dropped
                        await finish(flight.deliver(pgconn, self._joined, self._waits))
            finally:  # also where the wait raises the cancellation that came meanwhile
                self._leave()
        else:
            self._leave()

    def _leave(self) -> None:
        """Leave the pipeline the call's statement was sent in, if the connection is still in it; close a connection
        that cannot leave it (results left unread), for its pool to replace."""
        pgconn = self.pgconn
        if pgconn.status == _CONNECTION_OK and pgconn.pipeline_status != _PIPELINE_OFF:
            try:
                pgconn.exit_pipeline_mode()
            except psycopg.OperationalError:
                pgconn.finish()

    # How a wire waits for what its generators read of the statement just sent (under the connection's lock): the
    # one thing the two wires do each their own way.
    if True:  # ASYNC

        def _wait(self, gen: Reading[T], kind: type) -> Awaitable[T]:  # noqa: ARG002 - checked by the sync wire
            """*gen* as the event loop's task runs it: a generator-based coroutine, whose waits are futures of the
            wire's watch of its socket (`SocketWatch`)."""
            return gen  # type: ignore[return-value]

        async def _stop(self) -> None:
            """After the call's task was cancelled (or interrupted) mid-statement: have the server stop it and read
            what remains (of a pipeline: up to its Sync), so that the connection can roll back and be reused, as
            psycopg does; close it if the server won't."""
            try:
                await self.conn.cancel_safe(timeout=CANCEL_TIMEOUT)
                await asyncio.wait_for(self._rest(), CANCEL_TIMEOUT)
            except BaseException as ex:  # noqa: BLE001 - whatever stopped the stop, the connection state is unknown
                stopped = type(ex).__name__
                logger.warning("statement not stopped after cancellation (%s): closing the connection", stopped)
                self.pgconn.finish()

    else:

        def _wait(self, gen: Reading[T], kind: type) -> T:
            """*gen* run on the connection's wait (psycopg's C poll loop, which stops the statement on the server
            on Ctrl-C), and, should that wait raise or return anything but a *kind* (a changed psycopg), on the
            fallback's."""
            try:
                read = internals.wait(self.conn)(gen)
                if type(read) is not kind:
                    raise Drift("psycopg.Connection.wait", TypeError(f"it gave {type(read).__name__}"))  # noqa: TRY301
            except psycopg.Error:
                raise
            except Exception as err:  # noqa: BLE001 - psycopg's wait, changed: our generator, driven by us
                return read_after(self.pgconn, err, "psycopg.Connection.wait", gen, probing=self._probing)
            return read

    async def _rest(self) -> None:
        """Read what is left of the statements sent (`generators.rest`), and drop it."""
        await self._wait(rest(self.pgconn, self._waits), type(None))

    async def self_test(self) -> bool:
        """Before the first call through a connection's wire: check that it does what psycopg would, by running a
        statement psycopg has prepared through the wire and comparing the result with the cursor's, inside a
        savepoint (a failure leaves the session's transaction as it was). On any difference, wires are turned
        off for the process: calls then go through cursors. A database error (a pooler that loses prepared
        statements) only keeps this wire unused. Return whether this wire may be used. The async wire's runs to its
        end though the call is cancelled meanwhile (then cancelled after it): a savepoint left half-way would break
        the session's own transaction."""
        return await finish(self._self_test())

    async def _self_test(self) -> bool:
        if not switch.on:
            return False
        conn = self.conn
        await settle(self.pgconn)  # the test's statements are sent first
        try:
            async with conn.transaction():
                cur = conn.cursor(binary=True, row_factory=tuple_row)
                await cur.execute(_PROBE, _PROBE_ARGS, prepare=True)
                expected = _probe_result(cur.pgresult, await cur.fetchall())
                self._tested = self._probing = True  # the probe itself goes through `execute`
                res = self.pgresult if await self.execute(_PROBE, _PROBE_ARGS, True) else None
                self._probing = False
                problem = _self_test_problem(expected, None if res is None else _probe_result(res, self.fetchmany(2)))
                if problem is None and self.name is not None and not poolers.behind_pooler_seen(conn):
                    found = await conn.execute(_PREPARED_BY_NAME, [self.name.decode()])
                    problem = None if await found.fetchone() else f"the server has no prepared statement {self.name!r}"
        except psycopg.Error as err:
            return self._failed_on_server(err)
        except Drift as err:  # the probe's result lost by a changed psycopg (`read_after`): rolled back with it
            return self._drifted_in_test(err)
        except BaseException:  # interrupted: not tested after all
            self._tested = self._probing = False
            raise
        return self._passed(conn, problem)

    def close(self) -> None:
        """Let go of what the wire holds of the connection, before the session gives it back: the async wire's
        watch of its socket; nothing for the sync wire."""
        if True:  # ASYNC
            self._watch.close()
