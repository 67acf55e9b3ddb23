"""Where sessions get their connections: the kinds of source, borrowing a connection (and beginning the session's
transaction on it), and giving it back.

A source is a `Database`, a psycopg_pool pool, a conninfo string (a connection opened for the session and closed
after it) or a psycopg connection the user manages (used inside a transaction or savepoint of its own).
"""

from __future__ import annotations

from typing import Any, TypeAlias, Union

import psycopg
from psycopg import AsyncConnection, AsyncTransaction, Connection, Transaction
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from . import _fork as forked
from ._database import IDLE_IN_TRANSACTION_TIMEOUT, Database
from ._errors import ArgumentError, NoSessionError
from ._poolers import configure_async, configure_sync, probe_once_async, probe_once_sync

__all__ = ["Source", "begin_async", "begin_sync", "check_sources", "describe_source", "release_async",
           "release_sync"]  # fmt: skip

Source: TypeAlias = Union[
    Database,
    str,
    "Connection[Any]",
    "AsyncConnection[Any]",
    "ConnectionPool[Any]",
    "AsyncConnectionPool[Any]",
]

_SYNC_SOURCES = (str, Connection, ConnectionPool)
_ASYNC_SOURCES = (str, AsyncConnection, AsyncConnectionPool)


def check_sources(what: str, source: object, replica: object = None) -> None:
    """Raise `ArgumentError` unless *source* (and *replica*, if given) can be a session's source."""
    for given in (source, replica):
        if (given is source or given is not None) and not isinstance(
            given, (*_SYNC_SOURCES, *_ASYNC_SOURCES, Database)
        ):
            msg = (
                f"{what} takes a Database, a conninfo string, a psycopg Connection/AsyncConnection or a "
                f"psycopg_pool pool, not {type(given).__qualname__} {given!r:.40}"
            )
            raise ArgumentError(msg)


def same_source(a: Source, b: Source) -> bool:
    return a is b or (isinstance(a, str) and a == b)


def is_async_source(source: Source, entered_async: bool) -> bool:
    if isinstance(source, Database):
        return source.is_async
    if isinstance(source, str):
        return entered_async  # a conninfo string serves both kinds
    return isinstance(source, _ASYNC_SOURCES)


def describe_source(source: Source) -> str:
    if isinstance(source, str):
        return "a conninfo string"
    if isinstance(source, Database):
        return repr(source)
    return type(source).__qualname__


def begin_sync(source: Source) -> tuple[Connection[Any], Transaction]:
    """Borrow a connection from *source* and begin the session's transaction on it."""
    if isinstance(source, str):
        conn = psycopg.Connection.connect(source, autocommit=True)
        configure_sync(conn, IDLE_IN_TRANSACTION_TIMEOUT)
    elif isinstance(source, (ConnectionPool, Database)):
        pool = source.pool if isinstance(source, Database) else _own_pool(source)
        conn = pool.getconn()
    else:
        assert isinstance(source, Connection)
        conn = source
    try:
        tx = Transaction(conn)
        tx.__enter__()
        if not isinstance(source, (str, Database)):
            probe_once_sync(conn)
    except BaseException:
        release_sync(source, conn)
        raise
    return conn, tx


def _own_pool(pool: Any) -> Any:
    """A pool of the user's, checked to be this process's own."""
    if forked.inherited(pool):
        msg = (
            f"{pool!r} was opened before this process was forked, and its connections belong to the parent "
            f"process; open the pool in the child (after the fork: a post-fork hook, or lazily), or use a "
            f"pgdecor Database, which does so by itself"
        )
        raise NoSessionError(msg)
    forked.seen(pool)
    return pool


def release_sync(source: Source, conn: Connection[Any]) -> None:
    if isinstance(source, str):
        conn.close()
    elif isinstance(source, Database):
        source.pool.putconn(conn)
    elif isinstance(source, ConnectionPool):
        source.putconn(conn)


async def begin_async(source: Source) -> tuple[AsyncConnection[Any], AsyncTransaction]:
    if isinstance(source, str):
        conn = await psycopg.AsyncConnection.connect(source, autocommit=True)
        await configure_async(conn, IDLE_IN_TRANSACTION_TIMEOUT)
    elif isinstance(source, (AsyncConnectionPool, Database)):
        pool = await source.aready() if isinstance(source, Database) else _own_pool(source)
        conn = await pool.getconn()
    else:
        assert isinstance(source, AsyncConnection)
        conn = source
    try:
        tx = AsyncTransaction(conn)
        await tx.__aenter__()
        if not isinstance(source, (str, Database)):
            await probe_once_async(conn)
    except BaseException:
        await release_async(source, conn)
        raise
    return conn, tx


async def release_async(source: Source, conn: AsyncConnection[Any]) -> None:
    if isinstance(source, str):
        await conn.close()
    elif isinstance(source, Database):
        await source.apool.putconn(conn)
    elif isinstance(source, AsyncConnectionPool):
        await source.putconn(conn)
