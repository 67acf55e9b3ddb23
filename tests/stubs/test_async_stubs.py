"""`async def` stubs behave as their sync twins under `async with session(...)`."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import pq
from psycopg_pool import AsyncConnectionPool

from pgdecor import MappingError, NoSessionError, NotFoundError, RolledBackError, procedure, query, session, transaction
from tests.usercode.userdb import (
    User,
    aadd_user,
    acount_users,
    aeach_user,
    aeach_user_awaited,
    aget_user,
    aload_user,
    auser_ids,
    auser_row,
    ausers_by_domain,
)

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


def test_every_result_shape(users: str) -> None:
    """One row, optional row, list, scalar, list of scalars, dict and None all work async."""

    async def scenario() -> None:
        async with session(users):
            assert await aload_user(1) == User(1, "ann", "ann@example.org")
            assert await aget_user(99) is None
            assert await ausers_by_domain("example.com") == [User(3, "cid", "cid@example.com")]
            assert await acount_users() == 3
            assert await auser_ids() == [1, 2, 3]
            assert await auser_row(2) == {"id": 2, "name": "bob", "email": None}
            await aadd_user(4, "dee")
            with pytest.raises(NotFoundError):
                await aload_user(99)

    run(scenario)


def test_async_iterator_streams_from_a_plain_def_stub(users: str) -> None:
    """A `def` stub annotated `-> AsyncIterator[T]` is iterated with `async for` directly."""

    async def scenario() -> list[int]:
        async with session(users):
            return [u.id async for u in aeach_user()]

    assert run(scenario) == [1, 2, 3]


def test_async_iterator_from_an_async_def_stub_is_awaited_first(users: str) -> None:
    """An `async def` stub annotated `-> AsyncIterator[T]` returns the stream when awaited."""

    async def scenario() -> list[int]:
        async with session(users):
            return [u.id async for u in await aeach_user_awaited()]

    assert run(scenario) == [1, 2, 3]


def test_async_stream_after_session_end_raises(users: str) -> None:
    """An async stream used after its session ended raises NoSessionError."""

    async def scenario() -> None:
        async with session(users):
            stream = await aeach_user_awaited()
            assert (await anext(stream)).id == 1
        with pytest.raises(NoSessionError, match="used after its session ended"):
            await anext(stream)

    run(scenario)


def test_commit_on_exit_and_rollback_on_exception(users: str) -> None:
    """The async session commits on normal exit and rolls back on an exception."""

    async def scenario() -> int:
        async with session(users):
            await aadd_user(4, "dee")
        with pytest.raises(KeyError):
            async with session(users):
                await aadd_user(5, "eve")
                raise KeyError
        async with session(users):
            return await acount_users()

    assert run(scenario) == 4


def test_async_pool_source_returns_connections_clean(users: str) -> None:
    """Connections borrowed from an AsyncConnectionPool go back idle, also after an error."""

    async def scenario() -> None:
        async with AsyncConnectionPool(users, min_size=1, max_size=1, open=False) as pool:
            with pytest.raises(psycopg.errors.UniqueViolation):
                async with session(pool):
                    await aadd_user(1, "dup")
            async with pool.connection() as conn:
                assert conn.info.transaction_status == pq.TransactionStatus.IDLE
            async with session(pool):
                assert await acount_users() == 3

    run(scenario)


def test_async_connection_source_stays_open(users: str) -> None:
    """An AsyncConnection given as source is used and left open."""

    async def scenario() -> None:
        async with await psycopg.AsyncConnection.connect(users) as conn:
            async with session(conn):
                await aadd_user(4, "dee")
            assert not conn.closed
            cur = await conn.execute("SELECT count(*) FROM users")
            assert await cur.fetchone() == (4,)

    run(scenario)


def test_async_transaction_is_a_savepoint(users: str) -> None:
    """`async with transaction()` rolls back alone."""

    async def scenario() -> tuple[User | None, User | None]:
        async with session(users):
            await aadd_user(4, "dee")
            with pytest.raises(psycopg.errors.UniqueViolation):
                async with transaction():
                    await aadd_user(5, "eve")
                    await aadd_user(1, "dup")
            return await aget_user(4), await aget_user(5)

    assert run(scenario) == (User(4, "dee", None), None)


def test_async_caught_error_rolls_back_loudly(users: str) -> None:
    """The async session, too, refuses to pretend a failed transaction committed."""

    async def scenario() -> None:
        async with session(users):
            with contextlib.suppress(psycopg.errors.UniqueViolation):
                await aadd_user(1, "dup")

    with pytest.raises(RolledBackError):
        run(scenario)


def test_async_call_outside_session(users: str) -> None:
    """An async call without a session raises NoSessionError."""
    with pytest.raises(NoSessionError, match="outside any session"):
        run(lambda: aget_user(1))


def test_async_mapping_errors(users: str) -> None:
    """Row shape checks apply to async stubs too."""

    @query("SELECT email FROM users WHERE id = 2")
    async def bob_email() -> str: ...

    async def scenario() -> None:
        async with session(users):
            await bob_email()

    with pytest.raises(MappingError, match="is NULL"):
        run(scenario)


def test_async_nested_composites(pg_dsn: str, pg_exec: Any) -> None:
    """Composite columns map onto nested dataclasses in async stubs as well."""
    from dataclasses import dataclass

    pg_exec("CREATE TYPE money2 AS (amount numeric, currency text)")

    @dataclass
    class Money:
        amount: Decimal
        currency: str

    @dataclass
    class Price:
        id: int
        price: Money

    @query("SELECT 1 AS id, ROW(5, 'EUR')::money2 AS price")
    async def price() -> Price: ...

    async def scenario() -> Price:
        async with session(pg_dsn):
            return await price()

    assert run(scenario) == Price(1, Money(Decimal(5), "EUR"))


def test_async_catalog_resolution_and_type_description(pg_dsn: str, pg_exec: Any) -> None:
    """Async stubs resolve procedures and overloads, and describe composite types, like sync ones."""
    from tests.usercode.legacy import SCHEMA, Bundle, Item

    pg_exec(SCHEMA + "CREATE PROCEDURE bump(INOUT n int) LANGUAGE sql AS $$ SELECT n + 1 $$;")

    @procedure("get_item")
    async def item_by_id(id: int) -> Item | None: ...

    @procedure("get_item")
    async def items_like(pattern: str) -> list[Item]: ...

    @procedure
    async def bundle(id: int) -> Bundle | None: ...

    @procedure
    async def bump(n: int) -> int: ...

    async def scenario() -> None:
        async with session(pg_dsn):
            assert await item_by_id(1) == Item(1, "one")
            assert await items_like("f%") == [Item(4, "four")]
            assert await bundle(3) == Bundle(Item(3, "three"), [Item(4, "four")])
            assert await bump(41) == 42

    run(scenario)
