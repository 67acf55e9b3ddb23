# Generated from tests/run/test_many_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.run.test_many_async`, generated from it: see there."""

from dataclasses import dataclass

import psycopg
import pytest

from pgdecor import DEFAULT, ArgumentError, NoSessionError, NotFoundError, procedure, query, session
from tests.fix_db import Exec
from tests.usercode.userdb import (
    User,
    add_user,
    count_users,
    each_user,
    get_user,
    load_user,
    set_email,
    user_name,
    users_by_domain,
)


def test_results_come_back_in_order_one_per_argument_set(users: str) -> None:
    """Positional tuples and keyword dicts bind as a call would; each result has the stub's shape."""

    @query("SELECT %(a)s::int + %(b)s::int")
    def add(a: int, b: int) -> int: ...

    with session(users):
        assert get_user.many([(2,), {"id": 1}, (99,)]) == [
            User(2, "bob", None),
            User(1, "ann", "ann@example.org"),
            None,
        ]
        assert user_name.many([(3,), (1,)]) == ["cid", "ann"]
        assert users_by_domain.many([("example.org",), ("example.com", 5), ("nowhere.test",)]) == [
            [User(1, "ann", "ann@example.org")],
            [User(3, "cid", "cid@example.com")],
            [],
        ]
        assert get_user.many([]) == []
        assert add.many([(1, 2), {"a": 3, "b": 4}]) == [3, 7]


def test_sets_whose_values_differ_in_type_read_each_result_by_its_own_columns(pg_dsn: str) -> None:
    """psycopg dumps a small int as int2, a larger one as int4 or int8: a batch mixing them runs a prepared statement
    per type, whose column (the parameter, selected back) has that type; each value comes back as given, in the
    batch psycopg prepares them in and in those the fast path sends, in any order of types."""

    @query("SELECT %(n)s AS n")
    def echo(n: int) -> int: ...

    values = [1, 2**40, 2**40 + 1, 3, 70_000, 2**40 + 2, 70_001, 5, 6]
    with session(pg_dsn):
        for turn in range(4):
            argsets = [(v,) for v in (values if turn % 2 else values[::-1])]
            assert echo.many(argsets) == [n for (n,) in argsets]


def test_many_on_a_stub_returning_none_writes_every_set(users: str) -> None:
    """A `-> None` stub's batch returns None; every call ran, in the session's transaction."""
    with session(users):
        assert add_user.many([(10, "dan"), {"id": 11, "name": "eve", "email": "eve@example.org"}]) is None
        set_email.many([(10, "dan@example.org"), (2, "bob@example.org")])
    with session(users):
        assert count_users() == 5
        assert [load_user(i).email for i in (10, 11, 2)] == [
            "dan@example.org",
            "eve@example.org",
            "bob@example.org",
        ]


def test_argument_sets_are_checked_before_anything_is_sent(users: str) -> None:
    """A bad set anywhere in the batch raises ArgumentError and no call of the batch runs."""
    with session(users):
        with pytest.raises(ArgumentError, match=r"argument 'email' must be str \| None, got int 5"):
            set_email.many([(1, "new@example.org"), (2, 5)])
        with pytest.raises(ArgumentError, match=r"argument set 1 is a int; pass each call's arguments as a tuple"):
            get_user.many([(1,), 2])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="missing 1 required positional argument: 'email'"):
            set_email.many([(1,)])
        assert load_user(1).email == "ann@example.org"


def test_row_count_errors_name_the_stub(users: str) -> None:
    """A `-> T` stub in a batch raises NotFoundError for the call that found no row."""
    with session(users), pytest.raises(NotFoundError, match=r"load_user: function get_user returned no row"):
        load_user.many([(1,), (42,)])


def test_database_error_in_a_batch_rolls_the_session_back(users: str) -> None:
    """A failing call in a batch raises psycopg's error with a note; the session's writes are rolled back."""
    with pytest.raises(psycopg.errors.UniqueViolation) as info, session(users):
        add_user(20, "fay")
        add_user.many([(21, "gus"), (1, "dup")])
    assert any("raised by tests.usercode.userdb.add_user" in note for note in getattr(info.value, "__notes__", []))
    with session(users):
        assert count_users() == 3


def test_default_masks_may_differ_between_sets(pg_dsn: str, pg_exec: Exec) -> None:
    """Sets leaving different arguments to the server's defaults each get their own statement, in order."""
    pg_exec("""
        CREATE FUNCTION greet(name text, greeting text DEFAULT 'hello') RETURNS text LANGUAGE sql
        AS $$ SELECT greeting || ' ' || name $$;
    """)

    @procedure
    def greet(name: str, greeting: str = DEFAULT) -> str: ...

    with session(pg_dsn):
        assert greet.many([("ann",), ("bob", "hi"), ("cid",), {"name": "dan", "greeting": "yo"}]) == [
            "hello ann",
            "hi bob",
            "hello cid",
            "yo dan",
        ]


def test_rows_of_described_types_map_in_a_first_batch(pg_dsn: str, pg_exec: Exec) -> None:
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
    def price(id: int) -> Price: ...

    with session(pg_dsn):
        assert price.many([(1,), (2,), (3,)]) == [Price(i, Money(i * 100, "EUR")) for i in (1, 2, 3)]


def test_streams_have_no_batch_form(users: str) -> None:
    """Batching a stream-returning stub is an error that says what to annotate instead, in a session or outside."""
    no_batch = r"each_user\.many\(\): .* has no batch form; annotate it `-> list\[\.\.\.\]`"
    with pytest.raises(ArgumentError, match=no_batch):
        each_user.many([()])
    with session(users), pytest.raises(ArgumentError, match=no_batch):
        each_user.many([()])


def test_many_without_session(users: str) -> None:
    """Outside a session, many() raises NoSessionError like a call."""
    with pytest.raises(NoSessionError, match=r"get_user\.many\(\)"):
        get_user.many([(1,)])
