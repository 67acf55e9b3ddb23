# Generated from pgdecor/_channels/listener_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._channels.listener_async`, generated from it: see there."""

from __future__ import annotations

import contextlib
import logging
import math
import random
import selectors
import socket
import threading
from collections import deque
from time import monotonic
from typing import Any, Generic, TypeVar, cast

import psycopg
from psycopg import Connection, pq
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import tuple_row
from typing_extensions import Self

from pgdecor._errors import ArgumentError, PayloadError, add_note
from pgdecor._run import trace
from pgdecor._sources.config import where
from pgdecor._sources.kinds import Given, source_for
from pgdecor._wire import poolers

from .channel import Missed, Subscription, listen_sql

__all__ = ["Listener"]

T = TypeVar("T")

logger = logging.getLogger("pgdecor")

#: Seconds between attempts to listen again after the connection was lost: the first pause, doubled after each
#: failed attempt up to the last, each drawn between half and the whole of it (so that listeners of a restarted
#: server do not come back all at once).
_PAUSES = (0.05, 5.0)
_LIVENESS = b"SELECT 1"
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_BAD = pq.ConnStatus.BAD

#: What `_decoded` gives for a payload skipped.
_SKIPPED: Any = object()


class _SilentError(Exception):
    """The server did not answer the liveness check in time."""


class Listener(Generic[T]):
    """The notifications of one channel, each payload decoded as the listener stub's annotation says, from a
    connection of the listener's own: what calling a `listen` stub returns. A stub annotated -> Iterator[...]
    returns a Listener; one annotated -> AsyncIterator[...] returns an AsyncListener, used with async with and
    async for.

    It listens on entering its block (so that what the channel announces from then on is delivered: read the
    current state after that), or at its first iteration, and stops at the end of the block, at `close`, or
    when the iteration is cancelled and the block left. It yields a `Missed` first, and again after each time it
    had to listen anew: a backend terminated, a server restarted, a network gone silent (found by a liveness
    check). Reconnection is retried for as long as it takes, with growing pauses; the first connection is not:
    its error is raised. Notifications come in the order their transactions committed, each once.

    A payload that does not decode is counted in `undecodable` and skipped with a WARNING, or raised as a
    `PayloadError` with ``undecodable="raise"``; either way the iteration goes on. Several tasks (or threads)
    may iterate one listener: each notification goes to one of them.
    """

    __slots__ = (
        "_closed",
        "_conn",
        "_conninfo",
        "_items",
        "_kwargs",
        "_listened",
        "_lost",
        "_selector",
        "_sub",
        "_turn",
        "_wakeup",
        "_woken",
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
        self._conn: Connection[Any] | None = None
        #: Payloads read and not handed out yet, and the `Missed` to hand out before them.
        self._items: deque[str | Missed] = deque()
        #: Why the listener is not listening: what the next `Missed` says.
        self._lost = "started"
        #: Whether it has listened once: after that, failing to listen again is retried.
        self._listened = False
        self._closed = False
        self._turn = threading.Lock()
        #: What waits on the socket, and the pair of sockets `close` wakes it with (made at the first wait).
        self._selector: selectors.BaseSelector | None = None
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
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

    def __repr__(self) -> str:
        state = "closed" if self._closed else "listening" if self._conn is not None else "not listening"
        return f"<pgdecor {type(self).__name__} {self._sub.channel!r} on {where(self._conninfo)} ({state})>"

    def __enter__(self) -> Self:
        with self._turn:
            if not self._listened and not self._closed:
                self._listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        with self._turn:
            while True:
                if self._closed:
                    self._shut()
                    raise StopIteration
                if self._items:
                    item = self._items.popleft()
                    if isinstance(item, Missed):
                        return cast("T", item)
                    value = self._decoded(item)
                    if value is not _SKIPPED:
                        return cast("T", value)
                elif self._conn is None:
                    self._listen()
                else:
                    self._receive(self._conn)

    def close(self) -> None:
        """Stop listening and close the connection. An iteration waiting in another task (or thread) for a
        notification ends; once this returns, the connection is closed."""
        self._closed = True
        self._wake()
        with self._turn:
            self._shut()

    # -- listening ----------------------------------------------------------------------------------------------

    def _listen(self) -> None:
        """Connect and listen: the first time, raising what fails; after the connection was lost, again and again
        until it listens or is closed. Then a `Missed` comes before anything the new connection received."""
        pause = _PAUSES[0]
        while not self._closed:
            try:
                self._conn = self._connect()
            except psycopg.Error as err:
                if not self._listened:
                    add_note(err, self._unreachable())
                    raise
                wait = pause * (0.5 + random.random() / 2)  # noqa: S311 - spreading retries, no secret
                logger.warning(
                    "pgdecor: %s could not listen on %r again (%s); next attempt in %.2f s",
                    self._sub.stub, self._sub.channel, _first_line(err), wait,
                )  # fmt: skip
                self._wait(None, wait)
                pause = min(pause * 2, _PAUSES[1])
                continue
            if self._listened:
                self.reconnects += 1
            self._listened = True
            self._items.appendleft(Missed(self._sub.channel, self._lost))
            return

    def _connect(self) -> Connection[Any]:
        """A new connection listening on the channel, refused behind a pooler; traced as ``LISTEN channel``."""
        traced = trace.start(self._sub.operation) if trace.settings.on and trace.recording() else None
        conn: Connection[Any] | None = None
        try:
            conn = Connection.connect(self._conninfo, **self._kwargs)
            items = self._items  # not self: the connection keeps its handler, and nothing may lead back here
            conn.add_notify_handler(lambda n: items.append(n.payload))
            pid = self._backend_pid(conn)
            conn.execute(listen_sql(self._sub.channel))
        except BaseException as err:
            if conn is not None:
                conn.close()
            if traced is not None:
                traced.end(None, err)
            raise
        if traced is not None:
            info = conn.info
            traced.end((info.host, str(info.port), info.dbname), None)
        self.backend_pid = pid
        return conn

    def _backend_pid(self, conn: Connection[Any]) -> int:
        """The pid of the server process *conn* reaches; `ArgumentError` if a pooler is in between."""
        cur = conn.cursor(row_factory=tuple_row)  # whatever row factory the source's options give connections
        cur.execute(poolers.PROBE)
        row = cur.fetchone()
        assert row is not None
        if poolers.behind_pooler(conn, row[0]):
            raise self._behind_pooler()
        return int(row[0])

    def _receive(self, conn: Connection[Any]) -> None:
        """Read what comes within ``check_every`` seconds; if nothing does, check that the server answers."""
        try:
            if self._wait(conn.fileno(), self._sub.check_every):
                self._read(conn)
            elif not self._closed:
                self._check(conn)
        except psycopg.Error as err:
            self._lose(conn, f"the connection was lost: {_first_line(err)}")
        except _SilentError as err:
            self._lose(conn, str(err))

    def _read(self, conn: Connection[Any]) -> None:
        pgconn = conn.pgconn
        pgconn.consume_input()
        encoding = conn.info.encoding
        while (notify := pgconn.notifies()) is not None:
            self._items.append(notify.extra.decode(encoding))
        if pgconn.status == _BAD:
            msg = "the connection is broken"
            raise psycopg.OperationalError(msg)

    def _check(self, conn: Connection[Any]) -> None:
        """``SELECT 1``, answered within ``check_timeout`` seconds, or `_SilentError`; what notifications come
        meanwhile are kept."""
        pgconn = conn.pgconn
        timeout = self._sub.check_timeout
        pgconn.send_query(_LIVENESS)
        deadline = monotonic() + timeout
        while True:
            if pgconn.flush() == 0 and not pgconn.is_busy():
                res = pgconn.get_result()
                if res is None:
                    break
                if res.status != _TUPLES_OK:
                    message = (res.error_message or b"").decode(errors="replace").strip()
                    msg = f"the liveness check failed: {message or pq.ExecStatus(res.status).name}"
                    raise _SilentError(msg)
                continue
            remaining = deadline - monotonic()
            if remaining <= 0 or not self._wait(conn.fileno(), remaining):
                if self._closed:
                    return
                msg = f"the server did not answer a liveness check (SELECT 1) within {timeout:g} s"
                raise _SilentError(msg)
            self._read(conn)
        self._read(conn)

    def _lose(self, conn: Connection[Any], reason: str) -> None:
        self._conn = None
        self.backend_pid = None
        self._lost = reason
        logger.warning(
            "pgdecor: %s stopped listening on %r: %s; listening again", self._sub.stub, self._sub.channel, reason
        )
        conn.close()

    def _shut(self) -> None:
        conn, self._conn = self._conn, None
        self.backend_pid = None
        if conn is not None:
            conn.close()
        selector, self._selector = self._selector, None
        wakeup, self._wakeup = self._wakeup, None
        if selector is not None:
            selector.close()
        for end in wakeup or ():
            end.close()

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

    # -- waiting ------------------------------------------------------------------------------------------------

    def _wait(self, fd: int | None, timeout: float) -> bool:
        """Wait until the socket *fd* is readable (True), *timeout* seconds have passed, or `close` was called
        (False)."""
        if self._closed:
            return False
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
            self._wakeup = socket.socketpair()
            for end in self._wakeup:
                end.setblocking(False)
            self._selector.register(self._wakeup[0], selectors.EVENT_READ)
        selector = self._selector
        if self._closed:  # closed before there was anything to wake
            return False
        if fd is not None:
            selector.register(fd, selectors.EVENT_READ)
        try:
            events = selector.select(timeout)
        finally:
            if fd is not None:
                selector.unregister(fd)
        readable = False
        for key, _ in events:
            if key.fd == fd:
                readable = True
            elif self._wakeup is not None:
                with contextlib.suppress(BlockingIOError):
                    self._wakeup[0].recv(64)
        return readable

    def _wake(self) -> None:
        """End a `_wait` under way, if any (`close` calls this before taking its turn)."""
        wakeup = self._wakeup
        if wakeup is not None:
            with contextlib.suppress(OSError):  # closed meanwhile, or woken already
                wakeup[1].send(b"\0")

    # -- messages -----------------------------------------------------------------------------------------------

    def _unreachable(self) -> str:
        return (
            f"pgdecor: {self._sub.stub} could not listen on {self._sub.channel!r} at {where(self._conninfo)}; "
            f"check that the server runs there and accepts this connection (host, port, user, password, dbname)"
        )

    def _behind_pooler(self) -> ArgumentError:
        msg = (
            f"{self._sub.stub}: {where(self._conninfo)} reaches the server through a connection pooler (the "
            f"backend pid it gave is not the server's), which may hand this connection's statements to any of its "
            f"server connections: LISTEN would be left on one of them, and its notifications would go to whichever "
            f"client has it next. Give the listener the server's own address (its host and port, not the "
            f"pooler's); sessions can keep using the pooler"
        )
        return ArgumentError(msg)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
