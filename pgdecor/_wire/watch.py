"""How the async wire waits: on a duplicate of the connection's socket, which only the wire registers with the
event loop, once per session (psycopg's own waits register and unregister the socket itself, so they never disturb
this registration, nor it theirs). What comes is read as it comes, and the waiting call woken only once a whole
result is in: a result often arrives in two reads, and waking the task costs more than reading.
"""

from __future__ import annotations

import asyncio
import os

import psycopg
from psycopg import pq

from .generators import Reading

__all__ = ["SocketWatch"]


class SocketWatch:
    """The event loop's watch of one connection's socket, for one session's wire: how its generators wait (their
    `generators.Waits`), as futures of the event loop, which its task awaits."""

    __slots__ = ("_armed", "_fd", "_fut", "_loop", "_pgconn", "_writing")

    def __init__(self, pgconn: pq.abc.PGconn) -> None:
        self._pgconn = pgconn
        self._loop = asyncio.get_running_loop()
        #: The duplicate of the connection's socket (closed by `close`, when the session gives the connection back),
        #: and whether `_wake` is registered as its reader.
        self._fd = os.dup(pgconn.socket)
        self._armed = False
        #: What `_wake` resolves when a whole result is in; done (or None) while no call waits.
        self._fut: asyncio.Future[None] | None = None
        #: The wait the socket's writer is registered for, if any (`flushing`).
        self._writing: asyncio.Future[None] | None = None

    def reading(self) -> Reading[object]:
        """A wait until a whole result is in, read already by `_wake`: it gives back None (nothing more to read); or
        psycopg's error, raised where it waits, should the connection break."""
        loop = self._loop
        self._fut = fut = loop.create_future()
        if not self._armed:
            loop.add_reader(self._fd, self._wake)
            self._armed = True
        return fut.__await__()

    def flushing(self) -> Reading[object]:
        """A wait until the socket is writable, or a whole result is in (as for `reading`)."""
        waiting = self.reading()
        fut = self._fut
        assert fut is not None
        loop, fd = self._loop, self._fd

        def writable() -> None:
            if not fut.done():
                fut.set_result(None)

        def done(_: object) -> None:
            if self._writing is fut:  # not one registered since, for the next wait
                self._writing = None
                loop.remove_writer(fd)

        self._writing = fut
        loop.add_writer(fd, writable)
        fut.add_done_callback(done)
        return waiting

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
            if self._writing is not None:
                self._writing = None
                loop.remove_writer(fd)
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
        if fut is None or fut.done():
            # Readable with nobody waiting (psycopg reading a result of its own, or a notification between
            # calls): stop watching until the next call, or the loop would call this again and again.
            self._armed = False
            self._loop.remove_reader(self._fd)
            return
        pgconn = self._pgconn
        try:
            pgconn.consume_input()
        except psycopg.Error as err:  # the connection broke: raised where the call's generator waits
            fut.set_exception(err)
            return
        if not pgconn.is_busy():
            fut.set_result(None)
