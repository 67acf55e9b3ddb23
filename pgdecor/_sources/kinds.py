"""Where sessions get their connections: the kinds of source, told apart and checked (borrowing from them is
`_session.lease_async`).

A source is a `Database`, a psycopg_pool pool, a conninfo string (a connection opened for the session and closed
after it) or a psycopg connection the user manages (used inside a transaction or savepoint of its own).
"""

from __future__ import annotations

from typing import Any, TypeAlias, Union

from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pgdecor._errors import ArgumentError, NoSessionError
from pgdecor._secrets import described

from . import fork as forked
from .config import DatabaseBase, check_conninfo

__all__ = ["Source", "check_sources", "describe_source", "is_async_source", "own_pool", "same_source"]

Source: TypeAlias = Union[
    DatabaseBase,
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
            given, (*_SYNC_SOURCES, *_ASYNC_SOURCES, DatabaseBase)
        ):
            msg = (
                f"{what} takes a Database, a conninfo string, a psycopg Connection/AsyncConnection or a "
                f"psycopg_pool pool, not {described(given)}"
            )
            raise ArgumentError(msg)
        if isinstance(given, str):
            check_conninfo(what, given)


def same_source(a: Source, b: Source) -> bool:
    return a is b or (isinstance(a, str) and a == b)


def is_async_source(source: Source, entered_async: bool) -> bool:
    if isinstance(source, DatabaseBase):  # opened with `async with`, it serves both kinds
        return entered_async if source.is_async else False
    if isinstance(source, str):
        return entered_async  # a conninfo string serves both kinds
    return isinstance(source, _ASYNC_SOURCES)


def describe_source(source: Source) -> str:
    if isinstance(source, str):
        return "a conninfo string"
    if isinstance(source, DatabaseBase):
        return repr(source)
    return type(source).__qualname__


def own_pool(pool: Any) -> Any:
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
