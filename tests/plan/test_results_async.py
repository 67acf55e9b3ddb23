"""The return annotation decides how many rows a call expects and what each row becomes.

These are the async stubs' tests; tests/plan/test_results.py, the sync stubs' same tests, is generated from them by
tools/async_to_sync.py."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, TypedDict

import pytest

from pgdecor import (
    AsyncStream,
    MappingError,
    NoSessionError,
    NotFoundError,
    TooManyRowsError,
    procedure,
    query,
    session,
)
from tests.fix_db import Exec
from tests.usercode.userdb import (
    User,
    aadd_user,
    aall_users,
    acount_users,
    aeach_user,
    aget_user,
    aload_user,
    aset_email,
    auser_ids,
    auser_name,
    auser_row,
    ausers_by_domain,
)


async def test_exactly_one_row_maps_onto_the_dataclass(users: str) -> None:
    """`-> T` returns the single row as T."""
    async with session(users):
        assert await aload_user(1) == User(1, "ann", "ann@example.org")


async def test_exactly_one_row_raises_not_found_when_no_row(users: str) -> None:
    """`-> T` with no row raises NotFoundError naming the stub and the function."""
    async with session(users):
        with pytest.raises(
            NotFoundError, match=r"tests\.usercode\.userdb\.aload_user: function get_user returned no row"
        ):
            await aload_user(99)


async def test_exactly_one_row_raises_too_many_rows(users: str, pg_exec: Exec) -> None:
    """`-> T` with two rows raises TooManyRowsError."""
    pg_exec("CREATE FUNCTION two_users() RETURNS SETOF users LANGUAGE sql AS $$ SELECT * FROM users LIMIT 2 $$")

    @procedure
    async def two_users() -> User: ...

    async with session(users):
        with pytest.raises(TooManyRowsError, match="returned 2 rows"):
            await two_users()


async def test_optional_result_is_none_when_no_row(users: str) -> None:
    """`-> T | None` returns None for no row, and the row otherwise."""
    async with session(users):
        assert await aget_user(99) is None
        assert await aget_user(2) == User(2, "bob", None)


async def test_optional_result_raises_too_many_rows(users: str) -> None:
    """`-> T | None` still refuses several rows."""

    @query("SELECT * FROM users")
    async def some_user() -> User | None: ...

    async with session(users):
        with pytest.raises(TooManyRowsError, match="returned 3 rows but the stub returns zero or one"):
            await some_user()


async def test_list_and_sequence_return_every_row(users: str) -> None:
    """`-> list[T]` and `-> Sequence[T]` return all rows, in order."""
    async with session(users):
        assert await ausers_by_domain("example.org") == [User(1, "ann", "ann@example.org")]
        assert [u.id for u in await aall_users()] == [1, 2, 3]
        assert await ausers_by_domain("nowhere") == []


async def test_iterator_streams_rows_in_batches(users: str, pg_exec: Exec) -> None:
    """`-> Iterator[T]` yields every row, across several server-side fetches."""
    pg_exec("INSERT INTO users SELECT g, 'user' || g, NULL FROM generate_series(10, 2509) g")
    async with session(users):
        ids = [u.id async for u in aeach_user()]
    assert ids == [1, 2, 3, *range(10, 2510)]


async def test_iterator_uses_a_server_side_cursor_closed_at_session_exit(users: str) -> None:
    """A stream holds a server-side cursor, which the session closes even if the stream is abandoned."""

    @query("SELECT count(*) FROM pg_cursors WHERE name LIKE 'pgdecor%%'")
    async def open_cursors() -> int: ...

    async with session(users):
        stream = aeach_user()
        assert await anext(stream) == User(1, "ann", "ann@example.org")
        assert await open_cursors() == 1
    async with session(users):
        assert await open_cursors() == 0
    with pytest.raises(NoSessionError, match="used after its session ended"):
        await anext(stream)


async def test_stream_closed_early_releases_its_cursor(users: str) -> None:
    """A stub annotated `-> Stream[T]` can be closed (or left in a `with`) to close the cursor at once."""

    @query("SELECT count(*) FROM pg_cursors WHERE name LIKE 'pgdecor%%'")
    async def open_cursors() -> int: ...

    @query("SELECT * FROM users ORDER BY id")
    def user_stream() -> AsyncStream[User]: ...

    async with session(users):
        async with user_stream() as stream:
            assert (await anext(stream)).id == 1
        assert await open_cursors() == 0
        stream = user_stream()
        await stream.aclose()
        assert await open_cursors() == 0
        if True:  # ASYNC
            pass  # test_an_async_stream_closed_before_its_first_read_yields_nothing
        else:
            assert list(stream) == []


if True:  # ASYNC

    async def test_an_async_stream_closed_before_its_first_read_yields_nothing(users: str) -> None:
        """An async stream closed before its first read yields nothing afterwards, as a sync one does."""

        @query("SELECT * FROM users ORDER BY id")
        def user_stream() -> AsyncStream[User]: ...

        async with session(users):
            stream = user_stream()
            await stream.aclose()
            assert [u async for u in stream] == []


async def test_scalar_result_is_the_single_column(users: str) -> None:
    """A scalar annotation returns the value of the one column."""
    async with session(users):
        assert await acount_users() == 3
        assert await auser_name(1) == "ann"


async def test_optional_scalar_accepts_null_and_no_row(users: str) -> None:
    """`-> str | None` returns None for a NULL value."""
    async with session(users):
        assert await auser_name(99) is None


async def test_scalar_null_into_non_optional_raises_mapping_error(users: str) -> None:
    """A NULL where the stub promises a value raises MappingError naming the column and the fix."""

    @query("SELECT email FROM users WHERE id = 2")
    async def bob_email() -> str: ...

    async with session(users):
        with pytest.raises(MappingError, match=r"column 'email' is NULL but the stub returns str"):
            await bob_email()


async def test_scalar_with_several_columns_raises_mapping_error(users: str) -> None:
    """A scalar stub over a multi-column result is a shape mismatch."""

    @query("SELECT id, name FROM users WHERE id = 1")
    async def id_and_name() -> int: ...

    async with session(users):
        with pytest.raises(MappingError, match=r"2 columns \(id, name\)"):
            await id_and_name()


async def test_list_of_scalars_returns_the_first_column_of_each_row(users: str) -> None:
    """`-> list[int]` returns one value per row."""
    async with session(users):
        assert await auser_ids() == [1, 2, 3]


async def test_scalar_with_no_row_raises_not_found(users: str) -> None:
    """`-> int` over zero rows raises NotFoundError."""

    @query("SELECT id FROM users WHERE false")
    async def no_id() -> int: ...

    async with session(users):
        with pytest.raises(NotFoundError):
            await no_id()


async def test_dict_result_is_the_row_as_a_dict(users: str) -> None:
    """`-> dict[str, Any]` returns the one row as a dict, as Simpycity did."""
    async with session(users):
        assert await auser_row(2) == {"id": 2, "name": "bob", "email": None}


async def test_none_result_executes_and_returns_nothing(users: str) -> None:
    """`-> None` runs the statement; its effect is committed with the session."""
    async with session(users):
        if True:  # ASYNC
            await aset_email(2, "bob@example.net")  # mypy knows an awaited None from its annotation alone
        else:
            assert aset_email(2, "bob@example.net") is None
    async with session(users):
        assert await aget_user(2) == User(2, "bob", "bob@example.net")


async def test_statement_without_rows_for_a_row_stub_raises_mapping_error(users: str) -> None:
    """An UPDATE without RETURNING cannot produce the promised str (an int would be the rows it affected)."""

    @query("UPDATE users SET name = name WHERE id = %(id)s")
    async def touch(id: int) -> str: ...

    async with session(users):
        with pytest.raises(MappingError, match="add RETURNING"):
            await touch(1)


async def test_rows_map_by_column_name_not_position(users: str) -> None:
    """Columns in another order than the fields still land in the right fields."""

    @query("SELECT email, id, name FROM users WHERE id = 1")
    async def shuffled() -> User: ...

    async with session(users):
        assert await shuffled() == User(1, "ann", "ann@example.org")


async def test_missing_column_raises_mapping_error(users: str) -> None:
    """A field with no column (and no default) is reported with the columns that were there."""

    @query("SELECT id, name FROM users WHERE id = 1")
    async def partial() -> User: ...

    async with session(users):
        with pytest.raises(MappingError) as info:
            await partial()
    assert f"{__name__}.test_missing_column_raises_mapping_error.<locals>.partial" in str(info.value)
    assert "no column 'email' for field tests.usercode.userdb.User.email" in str(info.value)
    assert "columns were: id, name" in str(info.value)


async def test_missing_column_is_fine_for_a_field_with_a_default(users: str) -> None:
    """A field with a default may be absent from the result."""

    @dataclass
    class Named:
        id: int
        name: str
        tags: list[str] = field(default_factory=list)

    @query("SELECT id, name FROM users WHERE id = 1")
    async def named() -> Named: ...

    async with session(users):
        assert await named() == Named(1, "ann", [])


async def test_extra_column_raises_mapping_error(users: str) -> None:
    """A column the row type has no field for is reported."""

    @query("SELECT *, 42 AS answer FROM users WHERE id = 1")
    async def too_wide() -> User: ...

    async with session(users):
        with pytest.raises(MappingError, match=r"column 'answer' which tests\.usercode\.userdb\.User has no field for"):
            await too_wide()


async def test_null_into_non_optional_field_raises_mapping_error(users: str) -> None:
    """NULL in a field not typed Optional names the column, the field and the fix."""

    @dataclass
    class Strict:
        id: int
        name: str
        email: str

    @query("SELECT * FROM users WHERE id = 2")
    async def strict() -> Strict: ...

    async with session(users):
        with pytest.raises(MappingError, match=r"column 'email' is NULL but field .*Strict\.email is str"):
            await strict()


async def test_namedtuple_typeddict_and_plain_class_rows(users: str) -> None:
    """NamedTuple, TypedDict and any class taking the columns as keyword arguments work as row types."""

    class Pair(NamedTuple):
        id: int
        name: str

    class PairDict(TypedDict):
        id: int
        name: str

    class Plain:
        def __init__(self, *, name: str, id: int) -> None:
            self.label = f"{id}:{name}"

    @query("SELECT id, name FROM users ORDER BY id")
    async def pairs() -> list[Pair]: ...

    @query("SELECT id, name FROM users ORDER BY id")
    async def pair_dicts() -> list[PairDict]: ...

    @query("SELECT id, name FROM users ORDER BY id")
    async def plains() -> list[Plain]: ...

    async with session(users):
        assert (await pairs())[0] == Pair(1, "ann")
        assert (await pair_dicts())[1] == {"id": 2, "name": "bob"}
        assert [p.label for p in await plains()] == ["1:ann", "2:bob", "3:cid"]


async def test_nested_dataclasses_map_from_composite_columns(pg_dsn: str, pg_exec: Exec) -> None:
    """A field typed as a dataclass is filled from a composite column, recursively."""
    pg_exec("""
        CREATE TYPE point2 AS (x int, y int);
        CREATE TYPE address AS (street text, city text, at point2);
        CREATE FUNCTION shop(id int) RETURNS TABLE (id int, price numeric, address address) LANGUAGE sql
        AS $$ SELECT id, 9.50, ROW('Main St', 'Springfield', ROW(3, 4)::point2)::address $$;
    """)

    @dataclass
    class Point:
        x: int
        y: int

    @dataclass
    class Address:
        city: str
        street: str
        at: Point

    @dataclass
    class Shop:
        id: int
        price: Decimal
        address: Address | None

    @procedure
    async def shop(id: int) -> Shop: ...

    async with session(pg_dsn):
        assert await shop(7) == Shop(7, Decimal("9.50"), Address("Springfield", "Main St", Point(3, 4)))
        assert (await shop(8)).address == Address("Springfield", "Main St", Point(3, 4))


async def test_stream_of_scalars(users: str) -> None:
    """`-> Iterator[int]` streams a column."""

    @query("SELECT id FROM users ORDER BY id")
    def ids() -> AsyncIterator[int]: ...

    async with session(users):
        assert [i async for i in ids()] == [1, 2, 3]


async def test_inserted_rows_are_visible_in_the_same_session(users: str) -> None:
    """Calls in one session share a transaction."""
    async with session(users):
        await aadd_user(4, "dee")
        assert await acount_users() == 4
        assert await aget_user(4) == User(4, "dee", None)


async def test_dict_rows_in_a_list(users: str) -> None:
    """`-> list[dict[str, Any]]` returns dict rows; a dict of one column that is no JSON document is refused, naming
    the column, its type and the fix."""

    @query("SELECT id, name FROM users ORDER BY id LIMIT 2")
    async def id_dicts() -> list[dict[str, Any]]: ...

    @query("SELECT id FROM users ORDER BY id LIMIT 2")
    async def ids_as_dicts() -> list[dict[str, Any]]: ...

    async with session(users):
        assert await id_dicts() == [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}]
        with pytest.raises(MappingError, match=r"returned one column, 'id' of type int4, but the stub returns"):
            await ids_as_dicts()


async def test_a_dict_of_one_json_column_is_its_document_in_queries_and_functions(users: str, pg_exec: Exec) -> None:
    """`-> dict[str, Any]` on one json or jsonb value is the document, whether a function returns it or a query
    selects it (rows too: a set of documents), and `| None` allows a NULL document; several columns are the row."""
    pg_exec(
        """CREATE FUNCTION profile(id int) RETURNS jsonb LANGUAGE sql
               AS $$ SELECT CASE WHEN id > 0 THEN jsonb_build_object('id', id, 'tags', '["a"]'::jsonb) END $$;
           CREATE FUNCTION profiles() RETURNS SETOF jsonb LANGUAGE sql
               AS $$ SELECT jsonb_build_object('id', i) FROM generate_series(1, 2) i $$;
           CREATE TABLE docs (id int PRIMARY KEY, body json);
           INSERT INTO docs VALUES (1, '{"id": 1, "tags": ["a"]}'), (2, NULL);"""
    )

    @procedure
    async def profile(id: int) -> dict[str, Any] | None: ...

    @procedure("profiles")
    async def all_profiles() -> list[dict[str, Any]]: ...

    @query("SELECT profile(%(id)s)")
    async def profile_by_query(id: int) -> dict[str, Any] | None: ...

    @query("SELECT body FROM docs WHERE id = %(id)s")
    async def body(id: int) -> dict[str, Any] | None: ...

    @query("SELECT body FROM docs WHERE id = %(id)s")
    async def strict_body(id: int) -> dict[str, Any]: ...

    @query("SELECT id, body FROM docs ORDER BY id")
    async def rows() -> list[dict[str, Any]]: ...

    document = {"id": 1, "tags": ["a"]}
    async with session(users):
        assert await profile(1) == await profile_by_query(1) == await body(1) == document
        assert await profile(0) is await profile_by_query(0) is await body(2) is None
        assert await all_profiles() == [{"id": 1}, {"id": 2}]
        assert await rows() == [{"id": 1, "body": document}, {"id": 2, "body": None}]
        with pytest.raises(MappingError, match=r"column 'body' is NULL but the stub returns dict\[str, Any\]"):
            await strict_body(2)


async def test_large_results_leave_the_garbage_collector_as_they_found_it(users: str) -> None:
    """Mapping a large result pauses the cyclic collector; its state is restored, also when mapping fails."""
    import gc

    @dataclass
    class Numbered:
        n: int
        label: str

    @query("SELECT i AS n, CASE WHEN i = %(null_at)s THEN NULL ELSE 'x' END AS label FROM generate_series(1, 2500) i")
    async def numbered(null_at: int) -> list[Numbered]: ...

    gc.enable()
    try:
        async with session(users):
            assert len(await numbered(0)) == 2500
            assert gc.isenabled()
            with pytest.raises(MappingError, match="column 'label' is NULL"):
                await numbered(1500)
            assert gc.isenabled()
    finally:
        gc.disable()
    async with session(users):
        assert len(await numbered(0)) == 2500
    assert not gc.isenabled()  # the suite runs with the collector off: pgdecor never turns it on
