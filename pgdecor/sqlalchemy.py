"""pgdecor in SQLAlchemy 2: stubs in the transaction of a SQLAlchemy ``Session`` or ``Connection``, atomic with
its ORM and Core writes, on an engine of the psycopg dialect (``postgresql+psycopg://``).

::

    import pgdecor.sqlalchemy

    with Session(engine) as db, db.begin():        # SQLAlchemy's transaction, committed at the end
        db.add(Order(...))
        with pgdecor.sqlalchemy.session(db):       # a savepoint in it, on its connection
            reserve_stock(order_id)                # a stub: commits with the order, or not at all

    async with AsyncSession(async_engine) as db, db.begin():
        async with pgdecor.sqlalchemy.asession(db):
            await areserve_stock(order_id)

SQLAlchemy itself is imported only by this module.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager, contextmanager
from typing import TypeVar

import psycopg
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session as OrmSession

from ._errors import ArgumentError
from ._session.api import Session, open_session
from ._session.modes import DEFAULT_MODE

__all__ = ["asession", "session"]

T = TypeVar("T")


def session(bind: OrmSession | Connection) -> AbstractContextManager[Session]:
    """A pgdecor session on *bind*'s connection (an ORM ``Session``'s, for its default bind, or a Core
    ``Connection``), in its transaction, for a ``with`` block.

    The block is a ``begin_nested()`` block of *bind*: a savepoint in SQLAlchemy's transaction (begun first if
    none was), which commits or rolls back the stubs' writes with SQLAlchemy's own when it ends, whoever ends
    it. An exception leaving the block rolls back the stubs' writes and SQLAlchemy's made in it, and SQLAlchemy
    knows it did (objects added in the block are expunged). The ORM's pending objects are flushed when the
    block begins, so the stubs see them.

    Raises `pgdecor.ArgumentError` when *bind*'s engine is not of the psycopg (3) dialect.
    """
    caller = sys._getframe(1)
    return _session(bind, f"{caller.f_code.co_filename}:{caller.f_lineno}")


def asession(bind: AsyncSession | AsyncConnection) -> AbstractAsyncContextManager[Session]:
    """`session` for an ``AsyncSession`` or an ``AsyncConnection`` (``create_async_engine`` with
    ``postgresql+psycopg://``), for an ``async with`` block: the async stubs called in it run in *bind*'s
    transaction."""
    caller = sys._getframe(1)
    return _asession(bind, f"{caller.f_code.co_filename}:{caller.f_lineno}")


@contextmanager
def _session(bind: OrmSession | Connection, opened_at: str) -> Iterator[Session]:
    with bind.begin_nested():
        conn = bind.connection() if isinstance(bind, OrmSession) else bind
        raw = _checked("session", bind, conn.connection.driver_connection, psycopg.Connection)
        with open_session("pgdecor.sqlalchemy.session()", raw, None, opened_at, DEFAULT_MODE) as s:
            s.connection()  # its savepoint begun here: one begun lazily, in a later begin_nested(), ends with it
            yield s


@asynccontextmanager
async def _asession(bind: AsyncSession | AsyncConnection, opened_at: str) -> AsyncIterator[Session]:
    async with bind.begin_nested():
        conn = await bind.connection() if isinstance(bind, AsyncSession) else bind
        driver = (await conn.get_raw_connection()).driver_connection
        raw = _checked("asession", bind, driver, psycopg.AsyncConnection)
        async with open_session("pgdecor.sqlalchemy.asession()", raw, None, opened_at, DEFAULT_MODE) as s:
            await s.aconnection()
            yield s


def _checked(what: str, bind: object, driver: object, kind: type[T]) -> T:
    if not isinstance(driver, kind):
        found = f"{type(driver).__module__}.{type(driver).__qualname__}"
        msg = (
            f"pgdecor.sqlalchemy.{what}(): the {type(bind).__qualname__}'s DBAPI connection is a {found}, not a "
            f"psycopg {kind.__qualname__}; create its engine with a postgresql+psycopg:// URL"
        )
        raise ArgumentError(msg)
    return driver
