"""Sessions: the one place that borrows, commits and gives back connections.

A session is a context manager that sets a `contextvars.ContextVar`; decorated calls made inside it (in the same
thread or asyncio task) find their connection there. The connection is borrowed at the first call and, at scope
exit, the transaction is committed (or rolled back on an exception) and the connection is returned to its pool
or closed. That happens in ``__exit__``/``__aexit__`` and nowhere else: nothing waits for the garbage collector.

The sync and async twins below are thin: the state they drive (`_State`) and every decision are shared.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias, Union

import psycopg
from psycopg import AsyncConnection, AsyncTransaction, Connection, Transaction, pq
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from typing_extensions import Self

from ._errors import ArgumentError, NoSessionError, RolledBackError
from ._registry import ServerKey, server_key

if TYPE_CHECKING:
    from ._streams import AsyncStream, Stream

__all__ = ["Session", "Source", "TransactionScope", "current", "session", "transaction"]

Source: TypeAlias = Union[
    str,
    "Connection[Any]",
    "AsyncConnection[Any]",
    "ConnectionPool[Any]",
    "AsyncConnectionPool[Any]",
]

_SYNC_SOURCES = (str, Connection, ConnectionPool)
_ASYNC_SOURCES = (str, AsyncConnection, AsyncConnectionPool)

_current: ContextVar[Session | None] = ContextVar("pgdecor.session", default=None)


def current() -> Session | None:
    """The session open in this context, if any."""
    return _current.get()


def session(source: Source, /) -> Session:
    """Open a session on *source* for the duration of a ``with`` (or ``async with``) block.

    *source* is a conninfo string (a connection is opened at the first call and closed at exit), a psycopg
    ``Connection`` (used as it is, inside a transaction or savepoint of its own), or a psycopg_pool pool (a
    connection is borrowed at the first call and given back at exit). Async sources need ``async with``.

    A session opened inside another session on the same source joins it: both share one connection and one
    transaction, which ends with the outer session. Use `transaction` for a nested unit that can fail alone::

        with session("postgresql:///app"):
            user = get_user(1)
    """
    if not isinstance(source, (*_SYNC_SOURCES, *_ASYNC_SOURCES)):
        msg = (
            f"session() takes a conninfo string, a psycopg Connection/AsyncConnection or a psycopg_pool pool, "
            f"not {type(source).__qualname__}"
        )
        raise ArgumentError(msg)
    return Session(source)


class Session:
    """The scope that owns one borrowed connection; see `session`."""

    __module__ = "pgdecor"
    __slots__ = (
        "_conn",
        "_cursors",
        "_ended",
        "_entered",
        "_is_async",
        "_joined",
        "_key",
        "_lock",
        "_source",
        "_streams",
        "_token",
        "_tx",
    )

    def __init__(self, source: Source) -> None:
        self._source = source
        self._conn: Any = None
        self._tx: Any = None
        self._token: Token[Session | None] | None = None
        self._joined: Session | None = None
        self._is_async = False
        self._entered = False
        self._ended = False
        self._lock = threading.Lock()
        #: Identifies the server of the borrowed connection (set when borrowing): catalog facts are per server.
        self._key: ServerKey = ("", "", "", "")
        self._streams: list[Stream[Any] | AsyncStream[Any]] = []
        #: The client-side cursors of the session's calls (one fetching text, one binary): a cursor is cheap
        #: to reuse and costly to make on every call.
        self._cursors: dict[bool, Any] = {}

    def __repr__(self) -> str:
        state = "ended" if self._ended else "active" if self._entered else "not entered"
        kind = "async " if self._is_async else ""
        return f"<pgdecor {kind}session on {_describe_source(self._source)} ({state})>"

    @property
    def is_async(self) -> bool:
        return self._is_async

    # -- entering and leaving, shared by both kinds -------------------------------------------------------

    def _enter(self, *, is_async: bool) -> None:
        if self._entered:
            msg = f"{self!r} was already entered; call session(...) again for a new scope"
            raise NoSessionError(msg)
        allowed = _ASYNC_SOURCES if is_async else _SYNC_SOURCES
        if not isinstance(self._source, allowed):
            how = "`with session(...)`" if is_async else "`async with session(...)`"
            msg = f"session({_describe_source(self._source)}) must be entered with {how}"
            raise ArgumentError(msg)
        self._entered = True
        self._is_async = is_async
        outer = _current.get()
        if outer is not None and outer._is_async == is_async and _same_source(outer._source, self._source):
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

    def _check_usable(self) -> None:
        if self._ended:
            msg = (
                f"{self!r} has ended; its connection was given back. "
                f"Make the call inside `with session(...)`, or open a new session"
            )
            raise NoSessionError(msg)

    def cursor(self, conn: Any, binary: bool) -> Any:
        """The session's client-side cursor on *conn* fetching binary (or text) results."""
        cur = self._cursors.get(binary)
        if cur is None:
            cur = self._cursors[binary] = conn.cursor(binary=binary)
        return cur

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
            for stream in self._close_streams():
                stream._end_sync()  # type: ignore[union-attr]
            if self._tx is not None:
                rolled_back = _rolled_back(self) if exc is None and _aborted(self._conn) else None
                if rolled_back is not None:
                    self._tx.__exit__(RolledBackError, rolled_back, None)
                    raise rolled_back
                self._tx.__exit__(exc_type, exc, tb)
        finally:
            conn, self._conn, self._tx = self._conn, None, None
            self._cursors = {}
            try:
                if conn is not None:
                    _release_sync(self._source, conn)
            finally:
                self._leave()

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
                conn = _borrow_sync(self._source)
                try:
                    tx = Transaction(conn)
                    tx.__enter__()
                except BaseException:
                    _release_sync(self._source, conn)
                    raise
                self._key = server_key(conn)
                self._conn, self._tx = conn, tx
        return self._conn  # type: ignore[no-any-return]

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
            for stream in self._close_streams():
                await stream._end_async()  # type: ignore[union-attr]
            if self._tx is not None:
                rolled_back = _rolled_back(self) if exc is None and _aborted(self._conn) else None
                if rolled_back is not None:
                    await self._tx.__aexit__(RolledBackError, rolled_back, None)
                    raise rolled_back
                await self._tx.__aexit__(exc_type, exc, tb)
        finally:
            conn, self._conn, self._tx = self._conn, None, None
            self._cursors = {}
            try:
                if conn is not None:
                    await _release_async(self._source, conn)
            finally:
                self._leave()

    async def aconnection(self) -> AsyncConnection[Any]:
        """The session's async connection, borrowed (and a transaction begun) on first use."""
        if self._joined is not None:
            return await self._joined.aconnection()
        conn = self._conn
        if conn is not None:
            return conn  # type: ignore[no-any-return]
        self._check_usable()
        conn = await _borrow_async(self._source)
        if self._conn is not None:  # another task of this session borrowed meanwhile
            await _release_async(self._source, conn)
            return self._conn  # type: ignore[no-any-return]
        try:
            tx = AsyncTransaction(conn)
            await tx.__aenter__()
        except BaseException:
            await _release_async(self._source, conn)
            raise
        self._key = server_key(conn)
        self._conn, self._tx = conn, tx
        return conn

    def _track(self, stream: Stream[Any] | AsyncStream[Any]) -> None:
        owner = self._joined or self
        owner._streams.append(stream)

    def _untrack(self, stream: Stream[Any] | AsyncStream[Any]) -> None:
        owner = self._joined or self
        if stream in owner._streams:
            owner._streams.remove(stream)


def _aborted(conn: Connection[Any] | AsyncConnection[Any]) -> bool:
    return conn.info.transaction_status == pq.TransactionStatus.INERROR


def _rolled_back(sess: Session) -> RolledBackError:
    msg = (
        f"{sess!r}: a database error inside the session was caught, but it had aborted the transaction, "
        f"so nothing was committed; wrap the call that may fail in `with transaction():` so that its error "
        f"undoes only that part"
    )
    return RolledBackError(msg)


def _same_source(a: Source, b: Source) -> bool:
    return a is b or (isinstance(a, str) and a == b)


def _describe_source(source: Source) -> str:
    if isinstance(source, str):
        return "a conninfo string"
    return type(source).__qualname__


def _borrow_sync(source: Source) -> Connection[Any]:
    if isinstance(source, str):
        return psycopg.Connection.connect(source, autocommit=True)
    if isinstance(source, ConnectionPool):
        conn: Connection[Any] = source.getconn()
        return conn
    assert isinstance(source, Connection)
    return source


def _release_sync(source: Source, conn: Connection[Any]) -> None:
    if isinstance(source, str):
        conn.close()
    elif isinstance(source, ConnectionPool):
        source.putconn(conn)


async def _borrow_async(source: Source) -> AsyncConnection[Any]:
    if isinstance(source, str):
        return await psycopg.AsyncConnection.connect(source, autocommit=True)
    if isinstance(source, AsyncConnectionPool):
        conn: AsyncConnection[Any] = await source.getconn()
        return conn
    assert isinstance(source, AsyncConnection)
    return source


async def _release_async(source: Source, conn: AsyncConnection[Any]) -> None:
    if isinstance(source, str):
        await conn.close()
    elif isinstance(source, AsyncConnectionPool):
        await source.putconn(conn)


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

    __module__ = "pgdecor"
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
