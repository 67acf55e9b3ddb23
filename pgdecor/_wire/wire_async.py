"""`AsyncWire`: the lean call path of `_wire.wire` on an async connection, waiting through the event loop on a socket
of its own: what differs from the sync `Wire` by nature, written by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, pq
from psycopg.rows import tuple_row

from . import internals, poolers
from .guard import _PREPARED_BY_NAME, _PROBE, _PROBE_ARGS, _probe_result, _self_test_problem, drifted, switch
from .internals import Drift
from .shield import CANCEL_TIMEOUT as _CANCEL_TIMEOUT
from .shield import finish
from .wire import NOT_SENT, Batch, Each, Makers, Wire, _chunks, _groups, _notified

__all__ = ["AsyncWire"]

logger = logging.getLogger("pgdecor")

_ACTIVE = pq.TransactionStatus.ACTIVE
T = TypeVar("T")


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

    async def execute(self, sql: str, params: Sequence[Any], binary: bool, made: Makers | None = None) -> Any:
        """As `Wire.execute`, awaited. Its wait is written out here rather than in a coroutine of its own: one
        coroutine less to make and to resume on every call."""
        if not self._tested and not await self.aself_test():
            return NOT_SENT
        pgconn = self.pgconn
        loop = self._loop
        lock = internals.lock(self.conn)
        await lock.acquire()
        try:
            try:
                if not self._send(sql, params, binary):
                    return NOT_SENT
            except Drift as err:
                drifted(err)
                return NOT_SENT
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
                        await fut  # `_wake` read what came
                    finally:
                        self._fut = None
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
        if n := pgconn.notifies():
            _notified(pgconn, n)
        return self._made(sql, [] if first is None else [first], binary, made)

    async def execute_chunked(  # type: ignore[override]
        self, sql: str, params: Sequence[Any], binary: bool, each: Callable[[pq.abc.PGresult], None]
    ) -> pq.abc.PGresult | None:
        """As `Wire.execute_chunked`, awaited."""
        if not self._tested and not await self.aself_test():
            return None
        async with self._statement():
            try:
                if not self._send(sql, params, binary, chunked=True):
                    return None
            except Drift as err:
                drifted(err)
                return None
            read = await self._drive(_chunks(self.pgconn, each))
        return self._chunked_result(sql, read, binary)

    async def execute_many(  # type: ignore[override]
        self, sql: str, paramsets: Sequence[Sequence[Any]], binary: bool, each: Each | None = None
    ) -> Batch | None:
        """As `Wire.execute_many`, awaited."""
        if not self._tested and not await self.aself_test():
            return None
        pgconn = self.pgconn
        async with self._statement():
            try:
                batch = self._batch(sql, paramsets, binary)
            except Drift as err:
                drifted(err)
                return None
            if batch is None:
                return None
            pgconn.enter_pipeline_mode()
            try:
                batch()
                read = await self._drive(_groups(pgconn, len(paramsets) + 1, each))
            finally:
                pgconn.exit_pipeline_mode()
        return self._results(sql, read)

    @contextlib.asynccontextmanager
    async def _statement(self) -> AsyncIterator[None]:
        """Hold the connection's lock while a statement runs; stop it on the server if the task is cancelled (or
        interrupted) meanwhile. `execute`, the per-call path, does the same written out."""
        lock = internals.lock(self.conn)
        await lock.acquire()
        try:
            yield
        except BaseException:
            if self.pgconn.transaction_status == _ACTIVE:  # cancelled or interrupted while the server works
                await finish(self._stop())  # through the cancellations anyio repeats at every await
            raise
        finally:
            lock.release()

    async def _drive(self, gen: Generator[int, int, T]) -> T:
        """Run a generator of waits (as psycopg's) on the event loop, watching the wire's socket."""
        try:
            wait = next(gen)
            while True:
                if wait == internals.WAIT_RW:  # writing, and reading what the server sends meanwhile
                    wait = gen.send(await self._either())
                elif wait & internals.WAIT_W:
                    await self._writable()
                    wait = gen.send(internals.READY_W)
                else:
                    await self._readable()
                    wait = gen.send(internals.READY_R)
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
        return (internals.READY_R if readable.done() else 0) | (internals.READY_W if writable.done() else 0)

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
        """As `Wire.self_test`, awaited, and run to its end though the call is cancelled meanwhile (then cancelled
        after it): a savepoint left half-way would break the session's own transaction."""
        return await finish(self._self_test())

    async def _self_test(self) -> bool:
        if not switch.on:
            return False
        conn = self.conn
        try:
            async with conn.transaction():
                cur = conn.cursor(binary=True, row_factory=tuple_row)
                await cur.execute(_PROBE, _PROBE_ARGS, prepare=True)
                expected = _probe_result(cur.pgresult, await cur.fetchall())
                self._tested = True
                res = None if await self.execute(_PROBE, _PROBE_ARGS, True) is NOT_SENT else self.pgresult
                problem = _self_test_problem(expected, None if res is None else _probe_result(res, self.fetchmany(2)))
                if problem is None and self.name is not None and not poolers.behind_pooler_seen(conn):
                    found = await conn.execute(_PREPARED_BY_NAME, [self.name.decode()])
                    problem = None if await found.fetchone() else f"the server has no prepared statement {self.name!r}"
        except psycopg.Error as err:
            return self._failed_on_server(err)
        except BaseException:  # interrupted: not tested after all
            self._tested = self._probing = False
            raise
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
            except psycopg.Error as err:  # the connection broke: the waiting call raises psycopg's error
                fut.set_exception(err)
                return
            if not pgconn.is_busy():
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
            read = internals.wait_async(internals.execute(self.pgconn), self.pgconn.socket)
            await asyncio.wait_for(read, _CANCEL_TIMEOUT)
        except BaseException as ex:  # noqa: BLE001 - whatever stopped the stop, the connection state is unknown
            if isinstance(ex, Exception) and not isinstance(ex, (psycopg.Error, OSError, asyncio.TimeoutError)):
                drifted(Drift("psycopg.waiting.wait_async(psycopg.generators.execute)", ex))
            logger.warning("statement not stopped after cancellation (%s): closing the connection", type(ex).__name__)
            self.pgconn.finish()
