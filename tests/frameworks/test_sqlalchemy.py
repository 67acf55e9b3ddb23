"""pgdecor.sqlalchemy: stubs in the transaction of a SQLAlchemy 2 ``Session`` or ``Connection`` (psycopg
dialect), atomic with its ORM and Core writes, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import URL, Engine, create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import pgdecor.sqlalchemy
from pgdecor import ArgumentError, query
from tests.fix_db import Exec

TABLES = """
CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL);
CREATE TABLE reservations (item text NOT NULL);
"""


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str]


@query("INSERT INTO reservations (item) VALUES (%(item)s)")
def reserve(item: str) -> None: ...


@query("INSERT INTO reservations (item) VALUES (%(item)s)")
async def areserve(item: str) -> None: ...


@query("SELECT array_agg(item ORDER BY id) FROM orders")
def orders_seen() -> list[str] | None: ...


@query("SELECT array_agg(item ORDER BY id) FROM orders")
async def aorders_seen() -> list[str] | None: ...


def url(dsn: str) -> URL:
    """*dsn* as a SQLAlchemy URL of the psycopg dialect: each of its keywords a query parameter, which the dialect
    passes to psycopg."""
    return URL.create("postgresql+psycopg", query={k: str(v) for k, v in conninfo_to_dict(dsn).items()})


@pytest.fixture
def engine(pg_dsn: str, pg_exec: Exec) -> Iterator[Engine]:
    """An engine of the psycopg dialect on the test's schema, which holds an orders and a reservations table."""
    pg_exec(TABLES)
    engine = create_engine(url(pg_dsn))
    try:
        yield engine
    finally:
        engine.dispose()


def stored(pg_exec: Exec) -> tuple[list[str], list[str]]:
    """The items of the orders and of the reservations committed."""
    orders = [str(r[0]) for r in pg_exec("SELECT item FROM orders ORDER BY id")]
    return orders, [str(r[0]) for r in pg_exec("SELECT item FROM reservations ORDER BY item")]


def test_stubs_in_an_orm_session_commit_with_its_writes_or_not_at_all(engine: Engine, pg_exec: Exec) -> None:
    """In ``pgdecor.sqlalchemy.session(db)`` the stubs run on the ORM session's connection, in its transaction:
    they see its pending objects (flushed as the block begins), SQLAlchemy commits their writes with its own, and
    rolls both back when its transaction fails, even after the block ended well; a block that raises undoes its
    part alone (the object it added expunged) and the transaction goes on."""
    with Session(engine) as db, db.begin():
        db.add(Order(item="kept"))
        with pgdecor.sqlalchemy.session(db):
            assert orders_seen() == ["kept"]
            reserve("kept")
        undone = Order(item="undone")
        with pytest.raises(KeyError), pgdecor.sqlalchemy.session(db):
            db.add(undone)
            reserve("undone")
            raise KeyError
        assert undone not in db
    with pytest.raises(KeyError), Session(engine) as db, db.begin():
        with pgdecor.sqlalchemy.session(db):
            reserve("raised")
        db.add(Order(item="raised"))
        raise KeyError
    assert stored(pg_exec) == (["kept"], ["kept"])


def test_stubs_on_a_core_connection_commit_with_its_writes_or_not_at_all(engine: Engine, pg_exec: Exec) -> None:
    """The same on a Core ``Connection``: ``engine.begin()`` commits the stubs' writes with its own, or rolls
    both back."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO orders (item) VALUES ('kept')"))
        with pgdecor.sqlalchemy.session(conn):
            reserve("kept")
    with pytest.raises(KeyError), engine.begin() as conn:
        with pgdecor.sqlalchemy.session(conn):
            reserve("raised")
        conn.execute(text("INSERT INTO orders (item) VALUES ('raised')"))
        raise KeyError
    assert stored(pg_exec) == (["kept"], ["kept"])


def test_async_stubs_in_an_async_session_commit_with_its_writes_or_not_at_all(pg_dsn: str, pg_exec: Exec) -> None:
    """``create_async_engine`` with the psycopg dialect: async stubs in ``pgdecor.sqlalchemy.asession()`` of an
    ``AsyncSession`` or an ``AsyncConnection`` commit with their writes, or roll back with them."""
    pg_exec(TABLES)

    async def scenario(engine: AsyncEngine) -> None:
        async with AsyncSession(engine) as db, db.begin():
            db.add(Order(item="kept"))
            async with pgdecor.sqlalchemy.asession(db):
                assert await aorders_seen() == ["kept"]
                await areserve("kept")
        with pytest.raises(KeyError):
            async with AsyncSession(engine) as db, db.begin():
                async with pgdecor.sqlalchemy.asession(db):
                    await areserve("raised")
                db.add(Order(item="raised"))
                raise KeyError
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO orders (item) VALUES ('core')"))
            async with pgdecor.sqlalchemy.asession(conn):
                await areserve("core")
        with pytest.raises(KeyError):
            async with engine.begin() as conn:
                async with pgdecor.sqlalchemy.asession(conn):
                    await areserve("core-raised")
                raise KeyError

    async def main() -> None:
        engine = create_async_engine(url(pg_dsn))
        try:
            await scenario(engine)
        finally:
            await engine.dispose()

    asyncio.run(main())
    assert stored(pg_exec) == (["kept", "core"], ["core", "kept"])


def _undone(db: Session) -> None:
    with pgdecor.sqlalchemy.session(db):
        reserve("undone")  # the first call of the outer session's, made in this block
        raise KeyError


def test_a_session_inside_another_undoes_its_block_alone(engine: Engine, pg_exec: Exec) -> None:
    """A ``pgdecor.sqlalchemy.session()`` opened inside another on the same connection, whose block raises:
    its writes are undone (its ``begin_nested()``), the outer block's commit."""
    with Session(engine) as db, db.begin(), pgdecor.sqlalchemy.session(db):
        with pytest.raises(KeyError):
            _undone(db)
        reserve("kept")
    assert stored(pg_exec) == ([], ["kept"])


def test_an_engine_of_another_driver_is_refused() -> None:
    """An engine whose DBAPI connection is not psycopg's gets an error naming it and the URL to use."""
    engine = create_engine("sqlite://")
    try:
        with engine.connect() as conn:
            refused = r"the Connection's DBAPI connection is a sqlite3\.Connection, not a psycopg Connection; create"
            with pytest.raises(ArgumentError, match=refused), pgdecor.sqlalchemy.session(conn):
                pass  # pragma: no cover
    finally:
        engine.dispose()
