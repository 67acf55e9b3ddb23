# Generated from tests/plan/test_results_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.plan.test_results_async`, generated from it: see there."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, TypedDict

import pytest

from pgdecor import MappingError, NoSessionError, NotFoundError, Stream, TooManyRowsError, procedure, query, session
from tests.fix_db import Exec
from tests.usercode.userdb import (
    User,
    add_user,
    all_users,
    count_users,
    each_user,
    get_user,
    load_user,
    set_email,
    user_ids,
    user_name,
    user_row,
    users_by_domain,
)


def test_exactly_one_row_maps_onto_the_dataclass(users: str) -> None:
    """`-> T` returns the single row as T."""
    with session(users):
        assert load_user(1) == User(1, "ann", "ann@example.org")


def test_exactly_one_row_raises_not_found_when_no_row(users: str) -> None:
    """`-> T` with no row raises NotFoundError naming the stub and the function."""
    with (
        session(users),
        pytest.raises(NotFoundError, match=r"tests\.usercode\.userdb\.load_user: function get_user returned no row"),
    ):
        load_user(99)


def test_exactly_one_row_raises_too_many_rows(users: str, pg_exec: Exec) -> None:
    """`-> T` with two rows raises TooManyRowsError."""
    pg_exec("CREATE FUNCTION two_users() RETURNS SETOF users LANGUAGE sql AS $$ SELECT * FROM users LIMIT 2 $$")

    @procedure
    def two_users() -> User: ...

    with session(users), pytest.raises(TooManyRowsError, match="returned 2 rows"):
        two_users()


def test_optional_result_is_none_when_no_row(users: str) -> None:
    """`-> T | None` returns None for no row, and the row otherwise."""
    with session(users):
        assert get_user(99) is None
        assert get_user(2) == User(2, "bob", None)


def test_optional_result_raises_too_many_rows(users: str) -> None:
    """`-> T | None` still refuses several rows."""

    @query("SELECT * FROM users")
    def some_user() -> User | None: ...

    with session(users), pytest.raises(TooManyRowsError, match="returned 3 rows but the stub returns zero or one"):
        some_user()


def test_list_and_sequence_return_every_row(users: str) -> None:
    """`-> list[T]` and `-> Sequence[T]` return all rows, in order."""
    with session(users):
        assert users_by_domain("example.org") == [User(1, "ann", "ann@example.org")]
        assert [u.id for u in all_users()] == [1, 2, 3]
        assert users_by_domain("nowhere") == []


def test_iterator_streams_rows_in_batches(users: str, pg_exec: Exec) -> None:
    """`-> Iterator[T]` yields every row, across several server-side fetches."""
    pg_exec("INSERT INTO users SELECT g, 'user' || g, NULL FROM generate_series(10, 2509) g")
    with session(users):
        ids = [u.id for u in each_user()]
    assert ids == [1, 2, 3, *range(10, 2510)]


def test_iterator_uses_a_server_side_cursor_closed_at_session_exit(users: str) -> None:
    """A stream holds a server-side cursor, which the session closes even if the stream is abandoned."""

    @query("SELECT count(*) FROM pg_cursors WHERE name LIKE 'pgdecor%%'")
    def open_cursors() -> int: ...

    with session(users):
        stream = each_user()
        assert next(stream) == User(1, "ann", "ann@example.org")
        assert open_cursors() == 1
    with session(users):
        assert open_cursors() == 0
    with pytest.raises(NoSessionError, match="used after its session ended"):
        next(stream)


def test_stream_closed_early_releases_its_cursor(users: str) -> None:
    """A stub annotated `-> Stream[T]` can be closed (or left in a `with`) to close the cursor at once."""

    @query("SELECT count(*) FROM pg_cursors WHERE name LIKE 'pgdecor%%'")
    def open_cursors() -> int: ...

    @query("SELECT * FROM users ORDER BY id")
    def user_stream() -> Stream[User]: ...

    with session(users):
        with user_stream() as stream:
            assert next(stream).id == 1
        assert open_cursors() == 0
        stream = user_stream()
        stream.close()
        assert open_cursors() == 0
        assert list(stream) == []


def test_scalar_result_is_the_single_column(users: str) -> None:
    """A scalar annotation returns the value of the one column."""
    with session(users):
        assert count_users() == 3
        assert user_name(1) == "ann"


def test_optional_scalar_accepts_null_and_no_row(users: str) -> None:
    """`-> str | None` returns None for a NULL value."""
    with session(users):
        assert user_name(99) is None


def test_scalar_null_into_non_optional_raises_mapping_error(users: str) -> None:
    """A NULL where the stub promises a value raises MappingError naming the column and the fix."""

    @query("SELECT email FROM users WHERE id = 2")
    def bob_email() -> str: ...

    with session(users), pytest.raises(MappingError, match=r"column 'email' is NULL but the stub returns str"):
        bob_email()


def test_scalar_with_several_columns_raises_mapping_error(users: str) -> None:
    """A scalar stub over a multi-column result is a shape mismatch."""

    @query("SELECT id, name FROM users WHERE id = 1")
    def id_and_name() -> int: ...

    with session(users), pytest.raises(MappingError, match=r"2 columns \(id, name\)"):
        id_and_name()


def test_list_of_scalars_returns_the_first_column_of_each_row(users: str) -> None:
    """`-> list[int]` returns one value per row."""
    with session(users):
        assert user_ids() == [1, 2, 3]


def test_scalar_with_no_row_raises_not_found(users: str) -> None:
    """`-> int` over zero rows raises NotFoundError."""

    @query("SELECT id FROM users WHERE false")
    def no_id() -> int: ...

    with session(users), pytest.raises(NotFoundError):
        no_id()


def test_dict_result_is_the_row_as_a_dict(users: str) -> None:
    """`-> dict[str, Any]` returns the one row as a dict, as Simpycity did."""
    with session(users):
        assert user_row(2) == {"id": 2, "name": "bob", "email": None}


def test_none_result_executes_and_returns_nothing(users: str) -> None:
    """`-> None` runs the statement; its effect is committed with the session."""
    with session(users):
        assert set_email(2, "bob@example.net") is None
    with session(users):
        assert get_user(2) == User(2, "bob", "bob@example.net")


def test_statement_without_rows_for_a_row_stub_raises_mapping_error(users: str) -> None:
    """An UPDATE without RETURNING cannot produce the promised str (an int would be the rows it affected)."""

    @query("UPDATE users SET name = name WHERE id = %(id)s")
    def touch(id: int) -> str: ...

    with session(users), pytest.raises(MappingError, match="add RETURNING"):
        touch(1)


def test_rows_map_by_column_name_not_position(users: str) -> None:
    """Columns in another order than the fields still land in the right fields."""

    @query("SELECT email, id, name FROM users WHERE id = 1")
    def shuffled() -> User: ...

    with session(users):
        assert shuffled() == User(1, "ann", "ann@example.org")


def test_missing_column_raises_mapping_error(users: str) -> None:
    """A field with no column (and no default) is reported with the columns that were there."""

    @query("SELECT id, name FROM users WHERE id = 1")
    def partial() -> User: ...

    with session(users), pytest.raises(MappingError) as info:
        partial()
    assert f"{__name__}.test_missing_column_raises_mapping_error.<locals>.partial" in str(info.value)
    assert "no column 'email' for field tests.usercode.userdb.User.email" in str(info.value)
    assert "columns were: id, name" in str(info.value)


def test_missing_column_is_fine_for_a_field_with_a_default(users: str) -> None:
    """A field with a default may be absent from the result."""

    @dataclass
    class Named:
        id: int
        name: str
        tags: list[str] = field(default_factory=list)

    @query("SELECT id, name FROM users WHERE id = 1")
    def named() -> Named: ...

    with session(users):
        assert named() == Named(1, "ann", [])


def test_extra_column_raises_mapping_error(users: str) -> None:
    """A column the row type has no field for is reported."""

    @query("SELECT *, 42 AS answer FROM users WHERE id = 1")
    def too_wide() -> User: ...

    with (
        session(users),
        pytest.raises(MappingError, match=r"column 'answer' which tests\.usercode\.userdb\.User has no field for"),
    ):
        too_wide()


def test_null_into_non_optional_field_raises_mapping_error(users: str) -> None:
    """NULL in a field not typed Optional names the column, the field and the fix."""

    @dataclass
    class Strict:
        id: int
        name: str
        email: str

    @query("SELECT * FROM users WHERE id = 2")
    def strict() -> Strict: ...

    with session(users), pytest.raises(MappingError, match=r"column 'email' is NULL but field .*Strict\.email is str"):
        strict()


def test_namedtuple_typeddict_and_plain_class_rows(users: str) -> None:
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
    def pairs() -> list[Pair]: ...

    @query("SELECT id, name FROM users ORDER BY id")
    def pair_dicts() -> list[PairDict]: ...

    @query("SELECT id, name FROM users ORDER BY id")
    def plains() -> list[Plain]: ...

    with session(users):
        assert pairs()[0] == Pair(1, "ann")
        assert pair_dicts()[1] == {"id": 2, "name": "bob"}
        assert [p.label for p in plains()] == ["1:ann", "2:bob", "3:cid"]


def test_nested_dataclasses_map_from_composite_columns(pg_dsn: str, pg_exec: Exec) -> None:
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
    def shop(id: int) -> Shop: ...

    with session(pg_dsn):
        assert shop(7) == Shop(7, Decimal("9.50"), Address("Springfield", "Main St", Point(3, 4)))
        assert shop(8).address == Address("Springfield", "Main St", Point(3, 4))


def test_stream_of_scalars(users: str) -> None:
    """`-> Iterator[int]` streams a column."""

    @query("SELECT id FROM users ORDER BY id")
    def ids() -> Iterator[int]: ...

    with session(users):
        assert list(ids()) == [1, 2, 3]


def test_inserted_rows_are_visible_in_the_same_session(users: str) -> None:
    """Calls in one session share a transaction."""
    with session(users):
        add_user(4, "dee")
        assert count_users() == 4
        assert get_user(4) == User(4, "dee", None)


def test_dict_rows_in_a_list(users: str) -> None:
    """`-> list[dict[str, Any]]` returns dict rows; a dict of one column that is no JSON document is refused, naming
    the column, its type and the fix."""

    @query("SELECT id, name FROM users ORDER BY id LIMIT 2")
    def id_dicts() -> list[dict[str, Any]]: ...

    @query("SELECT id FROM users ORDER BY id LIMIT 2")
    def ids_as_dicts() -> list[dict[str, Any]]: ...

    with session(users):
        assert id_dicts() == [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}]
        with pytest.raises(MappingError, match=r"returned one column, 'id' of type int4, but the stub returns"):
            ids_as_dicts()


def test_a_dict_of_one_json_column_is_its_document_in_queries_and_functions(users: str, pg_exec: Exec) -> None:
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
    def profile(id: int) -> dict[str, Any] | None: ...

    @procedure("profiles")
    def all_profiles() -> list[dict[str, Any]]: ...

    @query("SELECT profile(%(id)s)")
    def profile_by_query(id: int) -> dict[str, Any] | None: ...

    @query("SELECT body FROM docs WHERE id = %(id)s")
    def body(id: int) -> dict[str, Any] | None: ...

    @query("SELECT body FROM docs WHERE id = %(id)s")
    def strict_body(id: int) -> dict[str, Any]: ...

    @query("SELECT id, body FROM docs ORDER BY id")
    def rows() -> list[dict[str, Any]]: ...

    document = {"id": 1, "tags": ["a"]}
    with session(users):
        assert profile(1) == profile_by_query(1) == body(1) == document
        assert profile(0) is profile_by_query(0) is body(2) is None
        assert all_profiles() == [{"id": 1}, {"id": 2}]
        assert rows() == [{"id": 1, "body": document}, {"id": 2, "body": None}]
        with pytest.raises(MappingError, match=r"column 'body' is NULL but the stub returns dict\[str, Any\]"):
            strict_body(2)


def test_large_results_leave_the_garbage_collector_as_they_found_it(users: str) -> None:
    """Mapping a large result pauses the cyclic collector; its state is restored, also when mapping fails."""
    import gc

    @dataclass
    class Numbered:
        n: int
        label: str

    @query("SELECT i AS n, CASE WHEN i = %(null_at)s THEN NULL ELSE 'x' END AS label FROM generate_series(1, 2500) i")
    def numbered(null_at: int) -> list[Numbered]: ...

    gc.enable()
    try:
        with session(users):
            assert len(numbered(0)) == 2500
            assert gc.isenabled()
            with pytest.raises(MappingError, match="column 'label' is NULL"):
                numbered(1500)
            assert gc.isenabled()
    finally:
        gc.disable()
    with session(users):
        assert len(numbered(0)) == 2500
    assert not gc.isenabled()  # the suite runs with the collector off: pgdecor never turns it on
