"""`stub.many(argsets)`: one call per argument set, pipelined, results in order.

These are the async stubs' tests; tests/run/test_many.py, the sync stubs' same tests, is generated from them by
tools/async_to_sync.py."""

from dataclasses import dataclass

import psycopg
import pytest

from pgdecor import DEFAULT, ArgumentError, NoSessionError, NotFoundError, procedure, query, session
from tests.fix_db import Exec
from tests.usercode.userdb import (
    User,
    aadd_user,
    acount_users,
    aeach_user,
    aget_user,
    aload_user,
    aset_email,
    auser_name,
    ausers_by_domain,
)


async def test_results_come_back_in_order_one_per_argument_set(users: str) -> None:
    """Positional tuples and keyword dicts bind as a call would; each result has the stub's shape."""

    @query("SELECT %(a)s::int + %(b)s::int")
    async def add(a: int, b: int) -> int: ...

    async with session(users):
        assert await aget_user.many([(2,), {"id": 1}, (99,)]) == [
            User(2, "bob", None),
            User(1, "ann", "ann@example.org"),
            None,
        ]
        assert await auser_name.many([(3,), (1,)]) == ["cid", "ann"]
        assert await ausers_by_domain.many([("example.org",), ("example.com", 5), ("nowhere.test",)]) == [
            [User(1, "ann", "ann@example.org")],
            [User(3, "cid", "cid@example.com")],
            [],
        ]
        assert await aget_user.many([]) == []
        assert await add.many([(1, 2), {"a": 3, "b": 4}]) == [3, 7]


async def test_sets_whose_values_differ_in_type_read_each_result_by_its_own_columns(pg_dsn: str) -> None:
    """psycopg dumps a small int as int2, a larger one as int4 or int8: a batch mixing them runs a prepared statement
    per type, whose column (the parameter, selected back) has that type; each value comes back as given, in the
    batch psycopg prepares them in and in those the fast path sends, in any order of types."""

    @query("SELECT %(n)s AS n")
    async def echo(n: int) -> int: ...

    values = [1, 2**40, 2**40 + 1, 3, 70_000, 2**40 + 2, 70_001, 5, 6]
    async with session(pg_dsn):
        for turn in range(4):
            argsets = [(v,) for v in (values if turn % 2 else values[::-1])]
            assert await echo.many(argsets) == [n for (n,) in argsets]


async def test_many_on_a_stub_returning_none_writes_every_set(users: str) -> None:
    """A `-> None` stub's batch returns None; every call ran, in the session's transaction."""
    async with session(users):
        if True:  # ASYNC
            await aadd_user.many([(10, "dan"), {"id": 11, "name": "eve", "email": "eve@example.org"}])
        else:
            assert aadd_user.many([(10, "dan"), {"id": 11, "name": "eve", "email": "eve@example.org"}]) is None
        await aset_email.many([(10, "dan@example.org"), (2, "bob@example.org")])
    async with session(users):
        assert await acount_users() == 5
        assert [(await aload_user(i)).email for i in (10, 11, 2)] == [
            "dan@example.org",
            "eve@example.org",
            "bob@example.org",
        ]


async def test_argument_sets_are_checked_before_anything_is_sent(users: str) -> None:
    """A bad set anywhere in the batch raises ArgumentError and no call of the batch runs."""
    async with session(users):
        with pytest.raises(ArgumentError, match=r"argument 'email' must be str \| None, got int 5"):
            await aset_email.many([(1, "new@example.org"), (2, 5)])
        with pytest.raises(ArgumentError, match=r"argument set 1 is a int; pass each call's arguments as a tuple"):
            await aget_user.many([(1,), 2])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="missing 1 required positional argument: 'email'"):
            await aset_email.many([(1,)])
        assert (await aload_user(1)).email == "ann@example.org"


async def test_row_count_errors_name_the_stub(users: str) -> None:
    """A `-> T` stub in a batch raises NotFoundError for the call that found no row."""
    async with session(users):
        with pytest.raises(NotFoundError, match=r"aload_user: function get_user returned no row"):
            await aload_user.many([(1,), (42,)])


async def test_database_error_in_a_batch_rolls_the_session_back(users: str) -> None:
    """A failing call in a batch raises psycopg's error with a note; the session's writes are rolled back."""
    with pytest.raises(psycopg.errors.UniqueViolation) as info:
        async with session(users):
            await aadd_user(20, "fay")
            await aadd_user.many([(21, "gus"), (1, "dup")])
    assert any("raised by tests.usercode.userdb.aadd_user" in note for note in getattr(info.value, "__notes__", []))
    async with session(users):
        assert await acount_users() == 3


async def test_default_masks_may_differ_between_sets(pg_dsn: str, pg_exec: Exec) -> None:
    """Sets leaving different arguments to the server's defaults each get their own statement, in order."""
    pg_exec("""
        CREATE FUNCTION greet(name text, greeting text DEFAULT 'hello') RETURNS text LANGUAGE sql
        AS $$ SELECT greeting || ' ' || name $$;
    """)

    @procedure
    async def greet(name: str, greeting: str = DEFAULT) -> str: ...

    async with session(pg_dsn):
        assert await greet.many([("ann",), ("bob", "hi"), ("cid",), {"name": "dan", "greeting": "yo"}]) == [
            "hello ann",
            "hi bob",
            "hello cid",
            "yo dan",
        ]


async def test_rows_of_described_types_map_in_a_first_batch(pg_dsn: str, pg_exec: Exec) -> None:
    """Composite columns are described before the batch's rows are made, even when the batch is the first call."""
    pg_exec("""
        CREATE TYPE money2 AS (amount int, currency text);
        CREATE FUNCTION price(id int) RETURNS TABLE (id int, price money2) LANGUAGE sql
        AS $$ SELECT id, ROW(id * 100, 'EUR')::money2 $$;
    """)

    @dataclass
    class Money:
        amount: int
        currency: str

    @dataclass
    class Price:
        id: int
        price: Money

    @procedure
    async def price(id: int) -> Price: ...

    async with session(pg_dsn):
        assert await price.many([(1,), (2,), (3,)]) == [Price(i, Money(i * 100, "EUR")) for i in (1, 2, 3)]


async def test_streams_have_no_batch_form(users: str) -> None:
    """Batching a stream-returning stub is an error that says what to annotate instead, in a session or outside."""
    no_batch = r"aeach_user\.many\(\): .* has no batch form; annotate it `-> list\[\.\.\.\]`"
    with pytest.raises(ArgumentError, match=no_batch):
        aeach_user.many([()])
    async with session(users):
        with pytest.raises(ArgumentError, match=no_batch):
            aeach_user.many([()])


async def test_many_without_session(users: str) -> None:
    """Outside a session, many() raises NoSessionError like a call."""
    with pytest.raises(NoSessionError, match=r"aget_user\.many\(\)"):
        await aget_user.many([(1,)])
