"""How the async wire waits: on a duplicate of the connection's socket, which only the wire registers with the
event loop, once per session (psycopg's own waits register and unregister the socket itself, so they never disturb
this registration, nor it theirs). What comes is read as it comes, and the waiting call woken only once a whole
result is in: a result often arrives in two reads, and waking the task costs more than reading.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, pq

from . import internals
from .generators import Reading, results
from .shield import CANCEL_TIMEOUT, finish

__all__ = ["SocketWatch"]

logger = logging.getLogger("pgdecor")

T = TypeVar("T")

_ACTIVE = pq.TransactionStatus.ACTIVE


class SocketWatch:
    """The event loop's watch of one connection's socket, for one session's wire: `drive` runs the wire's
    generators (`_wire.generators`) on it."""

    __slots__ = ("_armed", "_fd", "_fut", "_loop", "_pgconn")

    def __init__(self, pgconn: pq.abc.PGconn) -> None:
        self._pgconn = pgconn
        self._loop = asyncio.get_running_loop()
        #: The duplicate of the connection's socket (closed by `close`, when the session gives the connection back),
        #: and whether `_wake` is registered as its reader.
        self._fd = os.dup(pgconn.socket)
        self._armed = False
        #: What `_wake` resolves when a whole result is in; done (or None) while no call waits.
        self._fut: asyncio.Future[None] | None = None

    async def drive(self, gen: Reading[T], stop_on: AsyncConnection[Any] | None = None) -> T:
        """Run *gen* on the socket till it returns; a connection that broke while it waited is thrown into it. The
        statement it reads is stopped on the server if the task is cancelled (or interrupted) meanwhile, when
        *stop_on* is its connection (as psycopg does; through the cancellations anyio repeats at every await)."""
        try:
            wait = next(gen)
            while True:
                try:
                    if wait == internals.WAIT_R:
                        await self._readable()
                        ready = 0  # `_wake` has read what came
                    else:
                        ready = await self._ready(wait)
                except psycopg.Error as err:  # noqa: PERF203 - the connection broke: *gen* says what that means
                    wait = gen.throw(err)
                else:
                    wait = gen.send(ready)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        except BaseException:
            if stop_on is not None and self._pgconn.transaction_status == _ACTIVE:
                await finish(self._stop(stop_on))
            raise

    async def _stop(self, conn: AsyncConnection[Any]) -> None:
        """After the awaiting task was cancelled mid-statement: have the server stop it and read what remains, so
        that the connection can roll back and be reused; close it if the server won't."""
        try:
            await conn.cancel_safe(timeout=CANCEL_TIMEOUT)
            await asyncio.wait_for(self.drive(results(self._pgconn)), CANCEL_TIMEOUT)
        except BaseException as ex:  # noqa: BLE001 - whatever stopped the stop, the connection state is unknown
            logger.warning("statement not stopped after cancellation (%s): closing the connection", type(ex).__name__)
            self._pgconn.finish()

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

    def _readable(self) -> asyncio.Future[None]:
        """What `_wake` resolves once a whole result is in (or sets to psycopg's error, should the connection
        break)."""
        loop = self._loop
        self._fut = fut = loop.create_future()
        if not self._armed:
            loop.add_reader(self._fd, self._wake)
            self._armed = True
        return fut

    def _wake(self) -> None:
        fut = self._fut
        if fut is None or fut.done():
            # Readable with nobody waiting (psycopg reading a result of its own, or a notification between
            # calls): stop watching until the next call, or the loop would call this again and again.
            self._armed = False
            self._loop.remove_reader(self._fd)
            return
        pgconn = self._pgconn
        try:
            pgconn.consume_input()
        except psycopg.Error as err:  # the connection broke: the waiting call's generator is told
            fut.set_exception(err)
            return
        if not pgconn.is_busy():
            fut.set_result(None)

    async def _ready(self, wait: int) -> int:
        """Wait until the socket is ready for *wait*: writable (`READY_W`), or, if *wait* reads too, until a whole
        result is in, read already as for `_readable` (0: nothing more to read)."""
        loop = self._loop
        waits: list[asyncio.Future[None]] = []
        if wait & internals.WAIT_R:
            waits.append(self._readable())
        writable: asyncio.Future[None] = loop.create_future()

        def wake_writer() -> None:
            if not writable.done():
                writable.set_result(None)

        loop.add_writer(self._fd, wake_writer)
        try:
            await asyncio.wait([*waits, writable], return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_writer(self._fd)
            for fut in waits:
                fut.cancel()  # if not done
        for fut in waits:
            if not fut.cancelled():
                fut.result()  # psycopg's error, should the connection have broken
        return internals.READY_W if writable.done() else 0
