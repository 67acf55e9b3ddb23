"""`AsyncListener`: the notifications of one channel, from a connection of its own (see `pgdecor.listen`).

The listener reads from its connection only when everything it read before has been handed out, so what a slow
consumer has not taken yet waits in the server's notification queue, not in the process: what it holds is at most
one read of the socket. Between notifications, a connection silent for ``check_every`` seconds is asked
``SELECT 1``, which must be answered within ``check_timeout``: a server that stopped answering without closing
the connection is found so. A lost connection is replaced (with growing pauses between attempts), listening
again; a `Missed` is handed out before anything the new connection receives, as one is when the listener first
listens. What is done on the connection is `_channels.connection_async`'s; waiting for its socket, in a wait that
closing the listener ends, `_channels.waiter_async`'s.

This is the async source; `_channels.listener` (`Listener`) is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
from collections import deque
from typing import Any, Generic, TypeVar, cast

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from typing_extensions import Self

from pgdecor._errors import PayloadError, add_note
from pgdecor._sources.config import where
from pgdecor._sources.kinds import Given, source_for
from pgdecor._wire.shield import finish

from .channel import Missed, Subscription
from .connection_async import SilentError, check, connect, read
from .waiter_async import AsyncWaiter

__all__ = ["AsyncListener"]

T = TypeVar("T")

logger = logging.getLogger("pgdecor")

#: Seconds between attempts to listen again after the connection was lost: the first pause, doubled after each
#: failed attempt up to the last, each drawn between half and the whole of it (so that listeners of a restarted
#: server do not come back all at once).
_PAUSES = (0.05, 5.0)

#: What `_decoded` gives for a payload skipped.
_SKIPPED: Any = object()


class AsyncListener(Generic[T]):
    """The notifications of one channel, each payload decoded as the listener stub's annotation says, from a
    connection of the listener's own: what calling a `listen` stub returns. A stub annotated -> Iterator[...]
    returns a Listener; one annotated -> AsyncIterator[...] returns an AsyncListener, used with async with and
    async for.

    It listens on entering its block (so that what the channel announces from then on is delivered: read the
    current state after that), or at its first iteration, and stops at the end of the block, at `aclose`, or
    when the iteration is cancelled and the block left. It yields a `Missed` first, and again after each time it
    had to listen anew: a backend terminated, a server restarted, a network gone silent (found by a liveness
    check). Reconnection is retried for as long as it takes, with growing pauses; the first connection is not:
    its error is raised. Notifications come in the order their transactions committed, each once.

    A payload that does not decode is counted in `undecodable` and skipped with a WARNING, or raised as a
    `PayloadError` with ``undecodable="raise"``; either way the iteration goes on. Several tasks (or threads)
    may iterate one listener: each notification goes to one of them.
    """

    __slots__ = (
        "_conn",
        "_conninfo",
        "_items",
        "_kwargs",
        "_listened",
        "_lost",
        "_sub",
        "_turn",
        "_waiter",
        "backend_pid",
        "received",
        "reconnects",
        "undecodable",
    )

    def __init__(self, subscription: Subscription, source: Given) -> None:
        stub = subscription.stub
        conninfo, kwargs = source_for(f"{stub}()", source).own_connection(f"{stub}()")
        if "connect_timeout" not in kwargs and not conninfo_to_dict(conninfo).get("connect_timeout"):
            # a server that went silent must not hold a reconnection for the minutes TCP takes to give up
            kwargs["connect_timeout"] = max(2, math.ceil(subscription.check_timeout))  # libpq's least is 2
        self._sub = subscription
        self._conninfo = conninfo
        self._kwargs = {**kwargs, "autocommit": True}
        self._conn: AsyncConnection[Any] | None = None
        #: Payloads read and not handed out yet, and the `Missed` to hand out before them.
        self._items: deque[str | Missed] = deque()
        #: Why the listener is not listening: what the next `Missed` says.
        self._lost = "started"
        #: Whether it has listened once: after that, failing to listen again is retried.
        self._listened = False
        #: Waits for the connection's socket; stopped when the listener is closed.
        self._waiter = AsyncWaiter()
        if True:  # ASYNC
            #: Held while one task takes the next notification: others wait their turn.
            self._turn: Any = asyncio.Lock()
        else:
            self._turn = threading.Lock()
        #: Payloads handed out, and payloads that did not decode.
        self.received = 0
        self.undecodable = 0
        #: Times the listener listened anew after losing its connection.
        self.reconnects = 0
        #: The server process listening now (``pg_backend_pid()``); None while there is none.
        self.backend_pid: int | None = None

    @property
    def channel(self) -> str:
        """The channel listened to."""
        return self._sub.channel

    @property
    def _closed(self) -> bool:
        return self._waiter.stopped

    def __repr__(self) -> str:
        state = "closed" if self._closed else "listening" if self._conn is not None else "not listening"
        return f"<pgdecor {type(self).__name__} {self._sub.channel!r} on {where(self._conninfo)} ({state})>"

    async def __aenter__(self) -> Self:
        async with self._turn:
            if not self._listened and not self._closed:
                await self._listen()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        async with self._turn:
            while True:
                if self._closed:
                    await self._shut()
                    raise StopAsyncIteration
                if self._items:
                    item = self._items.popleft()
                    if isinstance(item, Missed):
                        return cast("T", item)
                    value = self._decoded(item)
                    if value is not _SKIPPED:
                        return cast("T", value)
                elif self._conn is None:
                    await self._listen()
                else:
                    await self._receive(self._conn)

    async def aclose(self) -> None:
        """Stop listening and close the connection. An iteration waiting in another task (or thread) for a
        notification ends; once this returns, the connection is closed."""
        self._waiter.stop()
        async with self._turn:
            await self._shut()

    # -- listening ----------------------------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Connect and listen: the first time, raising what fails; after the connection was lost, again and again
        until it listens or is closed. Then a `Missed` comes before anything the new connection received."""
        pause = _PAUSES[0]
        while not self._closed:
            try:
                self._conn, self.backend_pid = await connect(self._sub, self._conninfo, self._kwargs, self._items)
            except psycopg.Error as err:
                if not self._listened:
                    add_note(err, self._unreachable())
                    raise
                wait = pause * (0.5 + random.random() / 2)  # noqa: S311 - spreading retries, no secret
                logger.warning(
                    "pgdecor: %s could not listen on %r again (%s); next attempt in %.2f s",
                    self._sub.stub, self._sub.channel, _first_line(err), wait,
                )  # fmt: skip
                await self._waiter.wait(None, wait)
                pause = min(pause * 2, _PAUSES[1])
                continue
            if self._listened:
                self.reconnects += 1
            self._listened = True
            self._items.appendleft(Missed(self._sub.channel, self._lost))
            return

    async def _receive(self, conn: AsyncConnection[Any]) -> None:
        """Read what comes within ``check_every`` seconds; if nothing does, check that the server answers."""
        try:
            if await self._waiter.wait(conn.fileno(), self._sub.check_every):
                read(conn, self._items)
            elif not self._closed:
                await check(conn, self._items, self._sub.check_timeout, self._waiter)
        except psycopg.Error as err:
            await self._lose(conn, f"the connection was lost: {_first_line(err)}")
        except SilentError as err:
            await self._lose(conn, str(err))

    async def _lose(self, conn: AsyncConnection[Any], reason: str) -> None:
        self._conn = None
        self.backend_pid = None
        self._lost = reason
        logger.warning(
            "pgdecor: %s stopped listening on %r: %s; listening again", self._sub.stub, self._sub.channel, reason
        )
        await finish(conn.close())

    async def _shut(self) -> None:
        conn, self._conn = self._conn, None
        self.backend_pid = None
        if conn is not None:
            await finish(conn.close())
        self._waiter.release()

    def _decoded(self, text: str) -> Any:
        try:
            value = self._sub.payload.decode(text, self._sub.channel)
        except PayloadError as err:
            self.undecodable += 1
            if self._sub.raise_undecodable:
                raise
            logger.warning("pgdecor: %s; skipped (%d so far)", err, self.undecodable)
            return _SKIPPED
        self.received += 1
        return value

    # -- messages -----------------------------------------------------------------------------------------------

    def _unreachable(self) -> str:
        return (
            f"pgdecor: {self._sub.stub} could not listen on {self._sub.channel!r} at {where(self._conninfo)}; "
            f"check that the server runs there and accepts this connection (host, port, user, password, dbname)"
        )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
