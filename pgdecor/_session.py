"""Sessions: the one place that commits, rolls back and gives back connections.

A session is a context manager that sets a `contextvars.ContextVar`; decorated calls made inside it (in the same
thread or asyncio task, and tasks it starts) find their connection there. The connection is borrowed at the first
call (`_leaks.borrow_sync`: orphans on the source ended first, then `_sources`) and, at scope exit, the
transaction is committed (or rolled back on an exception, or when it is not sound) and the connection is returned
to its pool or closed. That happens in ``__exit__``/``__aexit__`` and nowhere else: nothing waits for the garbage
collector.

The sync and async twins below are thin: every decision (`_outcome`, `_exit_args`, `_detach`) is shared.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection, AsyncTransaction, Connection, Transaction, pq
from psycopg.rows import tuple_row
from typing_extensions import Self

from . import _fork as forked
from . import _leaks as leaks
from ._database import Database, counters_for
from ._errors import ArgumentError, NoSessionError, RolledBackError
from ._registry import ServerKey, server_key
from ._shield import finish
from ._sources import Source, check_sources, describe_source, is_async_source, release_async, release_sync, same_source
from ._wire import AsyncWire, Wire
from ._wire import usable as wire_usable

if TYPE_CHECKING:
    from ._streams import AsyncStream, Stream

__all__ = ["Session", "Source", "TransactionScope", "current", "session", "transaction"]

_current: ContextVar[Session | None] = ContextVar("pgdecor.session", default=None)

logger = logging.getLogger("pgdecor")


def current() -> Session | None:
    """The session open in this context, if any."""
    return _current.get()


def session(source: Source, /, *, replica: Source | None = None) -> Session:
    """Open a session on *source* for the duration of a ``with`` (or ``async with``) block.

    *source* is a `Database`, a psycopg_pool pool (a connection is borrowed at the first call and given back at
    exit), a conninfo string (a connection is opened at the first call and closed at exit), or a psycopg
    ``Connection`` (used as it is, inside a transaction or savepoint of its own). Async sources need
    ``async with``.

    Stubs declared ``readonly=True`` run on *replica* (a source of the same kind; a `Database` brings its own)
    as long as the session has not used *source*: once it has, they run there too, and see its writes.

    A session opened inside another session on the same source joins it: both share one connection and one
    transaction, which ends with the outer session. Use `transaction` for a nested unit that can fail alone::

        with session("postgresql:///app"):
            user = get_user(1)
    """
    check_sources("session()", source, replica)
    caller = sys._getframe(1)
    return Session(source, replica, f"{caller.f_code.co_filename}:{caller.f_lineno}")


class Session:
    """The scope that owns one borrowed connection (and one of a replica); see `session`."""

    __slots__ = (
        "_activity",
        "_borrowed_at",
        "_call_lock",
        "_conn",
        "_cursors",
        "_doomed",
        "_ended",
        "_entered",
        "_finished",
        "_forked",
        "_is_async",
        "_joined",
        "_key",
        "_lock",
        "_opened_at",
        "_owner",
        "_rconn",
        "_rcursors",
        "_replica",
        "_rkey",
        "_rtx",
        "_source",
        "_streams",
        "_token",
        "_tracked",
        "_tx",
    )

    def __init__(self, source: Source, replica: Source | None = None, opened_at: str = "?") -> None:
        self._source = source
        if replica is None and isinstance(source, Database):
            replica = source.replica
        self._replica = replica
        self._opened_at = opened_at
        self._conn: Any = None
        self._tx: Any = None
        self._rconn: Any = None
        self._rtx: Any = None
        self._token: Token[Session | None] | None = None
        self._joined: Session | None = None
        self._is_async = False
        self._entered = False
        self._ended = False
        self._finished = False
        self._lock = threading.Lock()
        #: Identifies the server of the borrowed connection (set when borrowing): catalog facts are per server.
        self._key: ServerKey = ("", "", "", "")
        self._rkey: ServerKey = ("", "", "", "")
        self._streams: list[Stream[Any] | AsyncStream[Any]] = []
        #: The client-side cursors of the session's calls (one fetching text, one binary; and its `Wire` under
        #: None): a cursor is cheap to reuse and costly to make on every call. The replica's
        #: connection has its own.
        self._cursors: dict[bool | None, Any] = {}
        self._rcursors: dict[bool | None, Any] = {}
        #: The thread or asyncio task that entered the session, and when the session borrowed: what the leak guard
        #: checks. Tasks the owner starts inside the block share the session; the owner outlives them.
        self._owner: Any = None
        self._borrowed_at = 0.0
        self._tracked = False
        #: Calls of tasks (or threads) sharing the session take turns on its connection and cursors.
        self._call_lock: Any = None
        #: Set by `doom`: the session rolls back at exit although its block did not raise.
        self._doomed = False
        #: Set in a child process for a session that was open when its parent forked: its connection is the
        #: parent's, never to be used or ended here.
        self._forked = False
        #: What the leak guard saw of the session's last results, and when (see `_idle_since`).
        self._activity: tuple[Any, float] | None = None

    def __repr__(self) -> str:
        state = "ended" if self._ended else "active" if self._entered else "not entered"
        kind = "async " if self._is_async else ""
        return f"<pgdecor {kind}session on {describe_source(self._source)} opened at {self._opened_at} ({state})>"

    @property
    def is_async(self) -> bool:
        return self._is_async

    # -- entering and leaving, shared by both kinds -------------------------------------------------------

    def _enter(self, *, is_async: bool) -> None:
        if self._entered:
            msg = f"{self!r} was already entered; call session(...) again for a new scope"
            raise NoSessionError(msg)
        for source in (self._source, self._replica):
            if source is not None and (source_is_async := is_async_source(source, is_async)) != is_async:
                how = "`async with session(...)`" if source_is_async else "`with session(...)`"
                msg = f"session({describe_source(source)}) must be entered with {how}"
                raise ArgumentError(msg)
        self._entered = True
        self._is_async = is_async
        self._owner = _owner(is_async=is_async)
        self._call_lock = asyncio.Lock() if is_async else threading.RLock()
        outer = _current.get()
        joinable = outer is not None and not outer._forked and outer._is_async == is_async
        if joinable and same_source(outer._source, self._source):  # type: ignore[union-attr]
            self._joined = outer
        else:
            self._token = _current.set(self)

    def _leave(self) -> None:
        self._ended = True
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    def _close_streams(self) -> list[Stream[Any] | AsyncStream[Any]]:
        streams, self._streams = self._streams, []
        return streams

    @property
    def lock(self) -> Any:
        """What a call holds while it uses the session's connection: an `asyncio.Lock` in an async session (tasks
        sharing the session take turns), a `threading.RLock` in a sync one."""
        return (self._joined or self)._call_lock

    def doom(self) -> None:
        """Make the session roll back when it ends, though its block does not raise (a middleware whose response
        says the request failed). Counted as rolled back; no error is raised for it."""
        (self._joined or self)._doomed = True

    def _check_usable(self) -> None:
        if self._forked:
            msg = (
                f"{self!r} was opened before this process was forked, and its connection belongs to the parent "
                f"process; open sessions (and Databases) in the child, after the fork"
            )
            raise NoSessionError(msg)
        if self._ended:
            msg = (
                f"{self!r} has ended; its connection was given back. "
                f"Make the call inside `with session(...)`, or open a new session"
            )
            raise NoSessionError(msg)

    def cursor(self, conn: Any, binary: bool) -> Any:
        """The session's client-side cursor on *conn* fetching binary (or text) results."""
        cursors = self._cursors if conn is self._conn else self._rcursors
        cur = cursors.get(binary)
        if cur is None:
            cur = cursors[binary] = conn.cursor(binary=binary, row_factory=tuple_row)
        return cur

    def wire(self, conn: Any) -> Any:
        """The session's `Wire` on *conn* (an `AsyncWire` in an async session): the path of its calls of
        statements already run once; None while calls cannot take it (see `wire_usable`)."""
        if not wire_usable(conn):
            return None
        cursors = self._cursors if conn is self._conn else self._rcursors
        wire = cursors.get(None)
        if wire is None:
            wire = cursors[None] = AsyncWire(conn) if self._is_async else Wire(conn)
        return wire

    def _outcome(self, exc: BaseException | None) -> tuple[bool, str | None]:
        """Before ending the transaction: whether to roll back, and the `RolledBackError` message to raise when it
        must though the block did not raise. A transaction is committed only if it is still open and sound on
        every connection: a database error the code caught (an aborted transaction, a lost connection, a server
        shut down) makes the session roll back and raise `RolledBackError`."""
        if isinstance(exc, GeneratorExit):
            leaks.warn_leak(self, "its generator was closed before the `with session()` block ended")
        if exc is not None or self._doomed:
            return True, None
        for conn in (self._conn, self._rconn):
            if conn is not None and (status := conn.info.transaction_status) != pq.TransactionStatus.INTRANS:
                return True, _rolled_back(self, lost=status != pq.TransactionStatus.INERROR)
        return False, None

    def _detach(self) -> list[tuple[Source, Any, Any]]:
        """Take the borrowed connections (with their sources and transactions) off the session."""
        links = [(self._source, self._conn, self._tx), (self._replica, self._rconn, self._rtx)]
        for cursors in (self._cursors, self._rcursors):
            wire = cursors.get(None)
            if wire is not None:
                wire.close()
        self._conn = self._tx = self._rconn = self._rtx = None
        self._cursors, self._rcursors = {}, {}
        return [(source, conn, tx) for source, conn, tx in links if conn is not None and source is not None]

    def _borrowed(self, conn: Any, *, replica: bool) -> None:
        if replica:
            self._rkey = server_key(conn)
        else:
            self._key = server_key(conn)
        if not self._tracked:
            self._tracked = True
            self._borrowed_at = time.monotonic()
            leaks.track(self)
            counters_for(self._source).add("borrowed")
            logger.debug("%r borrowed a connection", self)

    def _released(self, *, committed: bool) -> None:
        if leaks.untrack(self):
            counters = counters_for(self._source)
            counters.add("released")
            counters.add("committed" if committed else "rolled_back")
            logger.debug("%r %s and gave its connection back", self, "committed" if committed else "rolled back")

    # -- sync ------------------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._enter(is_async=False)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._joined is not None:
            self._ended = True
            return
        try:
            self._finish(exc_type, exc, tb)
        finally:
            self._leave()

    def _finish(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """End the transactions and give the connections back (once); `_leave` then resets the context."""
        if self._finished:
            return
        self._finished = self._ended = True
        committed = False
        try:
            for stream in self._close_streams():
                stream._end_sync()  # type: ignore[union-attr]
            rollback, problem = self._outcome(exc)
            for tx in (self._rtx, self._tx):
                if tx is not None:
                    tx.__exit__(*_exit_args(rollback, exc_type, exc, tb))
            if problem is not None:
                raise RolledBackError(problem)  # unnamed: a local would tie it to this frame in a cycle
            committed = not rollback
        finally:
            try:
                for source, conn, _ in self._detach():
                    release_sync(source, conn)
            finally:
                self._released(committed=committed)

    def connection(self) -> Connection[Any]:
        """The session's connection, borrowed (and a transaction begun) on first use."""
        if self._joined is not None:
            return self._joined.connection()
        conn = self._conn
        if conn is not None:
            return conn  # type: ignore[no-any-return]
        self._check_usable()
        with self._lock:
            if self._conn is None:
                self._conn, self._tx = leaks.borrow_sync(self._source)
                self._borrowed(self._conn, replica=False)
        return self._conn  # type: ignore[no-any-return]

    def connection_for(self, *, readonly: bool) -> Connection[Any]:
        """The connection a call uses: a readonly one goes to the replica, if the session has one and has not
        used the primary (whose writes it must see)."""
        if readonly and self._replica is not None and self._conn is None:
            return self.replica_connection()
        return self.connection()

    def replica_connection(self) -> Connection[Any]:
        """The connection to the replica, borrowed (and a transaction begun) on first use."""
        if self._joined is not None:
            return self._joined.replica_connection()
        if self._rconn is None:
            self._check_usable()
            assert self._replica is not None
            with self._lock:
                if self._rconn is None:
                    self._rconn, self._rtx = leaks.borrow_sync(self._replica)
                    self._borrowed(self._rconn, replica=True)
        return self._rconn  # type: ignore[no-any-return]

    # -- async -----------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._enter(is_async=True)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._joined is not None:
            self._ended = True
            return
        try:
            # Shielded: a transaction ended half-way (the task cancelled again while it rolls back, as anyio's
            # cancel scopes do) would leave a connection the pool can only throw away.
            await finish(self._afinish(exc_type, exc, tb))
        finally:
            self._leave()

    async def _afinish(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._finished:
            return
        self._finished = self._ended = True
        committed = False
        try:
            for stream in self._close_streams():
                await stream._end_async()  # type: ignore[union-attr]
            rollback, problem = self._outcome(exc)
            for tx in (self._rtx, self._tx):
                if tx is not None:
                    await tx.__aexit__(*_exit_args(rollback, exc_type, exc, tb))
            if problem is not None:
                raise RolledBackError(problem)  # unnamed: a local would tie it to this frame in a cycle
            committed = not rollback
        finally:
            try:
                for source, conn, _ in self._detach():
                    await release_async(source, conn)
            finally:
                self._released(committed=committed)

    async def aconnection(self) -> AsyncConnection[Any]:
        """The session's async connection, borrowed (and a transaction begun) on first use."""
        if self._joined is not None:
            return await self._joined.aconnection()
        conn = self._conn
        if conn is not None:
            return conn  # type: ignore[no-any-return]
        self._check_usable()
        conn, tx = await leaks.borrow_async(self._source)
        if self._conn is not None:  # another task of this session borrowed meanwhile
            await tx.__aexit__(None, None, None)
            await release_async(self._source, conn)
            return self._conn  # type: ignore[no-any-return]
        self._conn, self._tx = conn, tx
        self._borrowed(conn, replica=False)
        return conn

    async def aconnection_for(self, *, readonly: bool) -> AsyncConnection[Any]:
        if readonly and self._replica is not None and self._conn is None:
            return await self.areplica_connection()
        return await self.aconnection()

    async def areplica_connection(self) -> AsyncConnection[Any]:
        if self._joined is not None:
            return await self._joined.areplica_connection()
        if self._rconn is None:
            self._check_usable()
            assert self._replica is not None
            conn, tx = await leaks.borrow_async(self._replica)
            if self._rconn is not None:
                await tx.__aexit__(None, None, None)
                await release_async(self._replica, conn)
            else:
                self._rconn, self._rtx = conn, tx
                self._borrowed(conn, replica=True)
        return self._rconn  # type: ignore[no-any-return]

    def _track(self, stream: Stream[Any] | AsyncStream[Any]) -> None:
        owner = self._joined or self
        owner._streams.append(stream)

    def _untrack(self, stream: Stream[Any] | AsyncStream[Any]) -> None:
        owner = self._joined or self
        if stream in owner._streams:
            owner._streams.remove(stream)


def _owner(*, is_async: bool) -> Any:
    if is_async:
        try:
            return asyncio.current_task()
        except RuntimeError:  # pragma: no cover - an async session outside a running loop cannot borrow
            return None
    return threading.current_thread()


_ROLLBACK = RolledBackError("the session rolls back")


def _exit_args(
    rollback: bool, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
) -> tuple[type[BaseException] | None, BaseException | None, TracebackType | None]:
    """What a psycopg transaction's ``__exit__`` is given: the block's exception, or one that makes it roll back."""
    if exc is None and rollback:
        return RolledBackError, _ROLLBACK, None
    return exc_type, exc, tb


def _rolled_back(sess: Session, *, lost: bool) -> str:
    if lost:
        return (
            f"{sess!r}: its connection was lost (or the server ended it) during the session, after a database "
            f"error that the code caught; nothing was committed: let the error propagate, or retry the whole session"
        )
    return (
        f"{sess!r}: a database error inside the session was caught, but it had aborted the transaction, "
        f"so nothing was committed; wrap the call that may fail in `with transaction():` so that its error "
        f"undoes only that part"
    )


def _forget_after_fork() -> None:
    """In a forked child: the sessions open at the fork are the parent's. Their connections are made unreachable
    (see `_fork`) and they are ended here without a word to the server; using one raises `NoSessionError`."""
    for s in leaks.forget_all():
        s._forked = s._ended = s._finished = True
        for conn in (s._conn, s._rconn):
            if conn is not None:
                forked.blind(conn)
        # Kept, never finalized or given back; not even the wires are closed (their event loop's selector is
        # shared with the parent).
        forked.keep((s._conn, s._rconn, s._cursors, s._rcursors, s._tx, s._rtx))
        s._conn = s._tx = s._rconn = s._rtx = None
        s._cursors, s._rcursors = {}, {}


forked.on_fork(_forget_after_fork)


def transaction() -> TransactionScope:
    """A savepoint inside the current session: rolled back alone if its block raises.

    ::

        with session(pool):
            create_order(...)
            try:
                with transaction():
                    charge_card(...)      # fails: only this part is rolled back
            except CardDeclined:
                mark_unpaid(...)
    """
    return TransactionScope()


class TransactionScope:
    """A nested transaction (savepoint) in the current session; see `transaction`."""

    __slots__ = ("_tx",)

    def __init__(self) -> None:
        self._tx: Transaction | AsyncTransaction | None = None

    def __enter__(self) -> Self:
        sess = _session_for("transaction()", is_async=False)
        tx = Transaction(sess.connection())
        tx.__enter__()
        self._tx = tx
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        assert isinstance(self._tx, Transaction)
        return self._tx.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Self:
        sess = _session_for("transaction()", is_async=True)
        tx = AsyncTransaction(await sess.aconnection())
        await tx.__aenter__()
        self._tx = tx
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        assert isinstance(self._tx, AsyncTransaction)
        return await self._tx.__aexit__(exc_type, exc, tb)


def _session_for(what: str, *, is_async: bool) -> Session:
    """The current session, checked to be of the kind *what* needs."""
    sess = _current.get()
    if sess is None or sess._is_async != is_async:
        raise no_session_error(what, sess, is_async=is_async)
    return sess


def no_session_error(what: str, sess: Session | None, *, is_async: bool) -> NoSessionError:
    """The error for a call made where no session of its kind is open."""
    opener = "async with session(...)" if is_async else "with session(...)"
    if sess is None:
        msg = f"{what} was called outside any session; call it inside `{opener}:`"
    elif is_async:
        msg = f"{what} is async but the current session is synchronous; open it with `async with session(...)`"
    else:
        msg = (
            f"{what} is synchronous but the current session is async; "
            f"declare the stub with `async def`, or open a sync session with `with session(...)`"
        )
    return NoSessionError(msg)
