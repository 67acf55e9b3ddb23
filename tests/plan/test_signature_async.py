"""Async stubs' arguments are bound as Python binds them and checked before sending: the tests of
tests/plan/test_signature.py that call stubs, with async stubs (written as tools/async_to_sync.py reads an async
source: their sync twins are those of test_signature.py)."""

import datetime as dt
from typing import Any

import psycopg
import pytest

from pgdecor import ArgumentError, NoSessionError, UndefinedFunctionError, procedure, query, session
from tests.fix_db import Exec
from tests.usercode.userdb import User, aadd_user, aget_user, aset_email, ausers_by_domain


async def test_query_literal_percent_is_written_double(users: str) -> None:
    """%% in the SQL is a literal percent sign."""

    @query("SELECT count(*) FROM users WHERE email LIKE '%%' || %(domain)s")
    async def count_domain(domain: str) -> int: ...

    async with session(users):
        assert await count_domain("example.org") == 1


async def test_a_repeated_placeholder_binds_the_same_argument(users: str) -> None:
    """One parameter may appear several times."""

    @query("SELECT %(n)s + %(n)s")
    async def double(n: int) -> int: ...

    async with session(users):
        assert await double(21) == 42


async def test_keyword_and_default_arguments_work_as_in_python(users: str) -> None:
    """Arguments bind positionally, by keyword, and from defaults."""
    async with session(users):
        assert await aget_user(id=1) == await aget_user(1)
        assert await ausers_by_domain("example.com") == await ausers_by_domain(domain="example.com", limit=100)
        assert await ausers_by_domain("example.org", limit=0) == []


async def test_keyword_only_and_positional_only_parameters(users: str) -> None:
    """The stub's parameter kinds are kept exactly."""

    @query("SELECT %(a)s::int + %(b)s::int")
    async def add(a: int, /, *, b: int = 1) -> int: ...

    async with session(users):
        assert await add(1) == 2
        assert await add(1, b=5) == 6
    with pytest.raises(TypeError, match="positional-only"):
        await add(a=1)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2), {}), ((1,), {"id": 1}), ((), {"idd": 1})],
    ids=["missing", "too-many", "twice", "unknown-keyword"],
)
async def test_wrong_argument_counts_raise_pythons_own_type_error(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Missing, extra and unknown arguments fail with the message Python gives for the stub itself, at the call
    (before anything is awaited)."""
    with pytest.raises(TypeError) as expected:
        aget_user.__wrapped__(*args, **kwargs)  # type: ignore[attr-defined]
    with pytest.raises(TypeError) as got:
        aget_user(*args, **kwargs)  # type: ignore[unused-coroutine]
    assert str(got.value) == str(expected.value)


async def test_argument_of_wrong_type_is_refused_before_sending(users: str) -> None:
    """ "1" for an int raises ArgumentError (a TypeError) naming the parameter; nothing reaches the server."""
    async with session(users) as s:
        with pytest.raises(
            ArgumentError, match=r"tests\.usercode\.userdb\.aget_user\(\): argument 'id' must be int, got str '1'"
        ):
            await aget_user("1")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await aget_user(True)
        assert not s.borrowed  # the session never even borrowed a connection


async def test_none_for_non_optional_parameter_is_refused(users: str) -> None:
    """None is accepted only where the annotation is Optional."""
    async with session(users):
        with pytest.raises(ArgumentError, match="argument 'name' must be str, got NoneType None"):
            await aadd_user(9, None)  # type: ignore[arg-type]
        await aset_email(1, None)
        assert await aget_user(1) == User(1, "ann", None)


async def test_list_parameters_check_their_items(users: str) -> None:
    """`list[int]` is checked item by item and sent as an array."""

    @query("SELECT count(*) FROM users WHERE id = ANY(%(ids)s)")
    async def count_ids(ids: list[int]) -> int: ...

    async with session(users):
        assert await count_ids([1, 3, 99]) == 2
        with pytest.raises(ArgumentError, match="argument 'ids' must be list\\[int\\]"):
            await count_ids([1, "2"])  # type: ignore[list-item]


async def test_a_str_argument_does_not_fit_a_date_parameter(pg_dsn: str, pg_exec: Exec) -> None:
    """A `str` is not silently cast to a date: the stub does not fit, and the error says why."""
    pg_exec("CREATE FUNCTION next_day(d date) RETURNS date LANGUAGE sql AS $$ SELECT d + 1 $$")

    @procedure
    async def next_day(d: str) -> dt.date: ...

    @procedure("next_day")
    async def next_day_typed(d: dt.date) -> dt.date: ...

    async with session(pg_dsn):
        assert await next_day_typed(dt.date(2024, 2, 28)) == dt.date(2024, 2, 29)
    with pytest.raises(UndefinedFunctionError, match=r"'d' is str in the stub but date in the function"):
        async with session(pg_dsn):
            await next_day("2024-02-28")


async def test_hostile_strings_are_bound_not_interpolated(users: str, pg_exec: Exec) -> None:
    """Quotes and `; DROP TABLE` text are stored verbatim and nothing is dropped."""
    evil = "Robert'); DROP TABLE users; -- \" $$ %s %(x)s"
    async with session(users):
        await aadd_user(10, evil)
        await aset_email(10, evil)
    async with session(users):
        assert await aget_user(10) == User(10, evil, evil)
    assert pg_exec("SELECT count(*) FROM users") == [(4,)]


async def test_missing_function_raises_a_clear_error(users: str) -> None:
    """A stub naming no existing function says which, with what parameters, and how to fix it."""

    @procedure
    async def get_usr(id: int) -> User | None: ...

    with pytest.raises(UndefinedFunctionError) as info:
        async with session(users):
            await get_usr(1)
    message = str(info.value)
    assert f"{__name__}.test_missing_function_raises_a_clear_error.<locals>.get_usr" in message
    assert "no function or procedure get_usr" in message
    assert "(the stub passes: id int)" in message
    assert "@procedure('schema.name')" in message
    assert isinstance(info.value, LookupError)  # a pgdecor error, not one the server raised
    assert info.value.sqlstate == "42883"


async def test_database_errors_keep_their_class_and_get_a_note(users: str) -> None:
    """A server error stays psycopg's class, with a note naming the stub and its SQL."""
    with pytest.raises(psycopg.errors.UniqueViolation) as info:
        async with session(users):
            await aadd_user(1, "again")
    assert any(
        "tests.usercode.userdb.aadd_user" in n and "INSERT INTO users" in n
        for n in getattr(info.value, "__notes__", [])
    )


async def test_schema_qualified_names_are_quoted(pg_dsn: str, pg_exec: Exec) -> None:
    """`@procedure("schema.name")` calls that schema's function, each part quoted."""
    pg_exec(
        'CREATE SCHEMA "Odd Schema"; CREATE FUNCTION "Odd Schema"."Hello"(who text) RETURNS text '
        "LANGUAGE sql AS $$ SELECT 'hello ' || who $$"
    )

    @procedure("Odd Schema.Hello")
    async def hello(who: str) -> str: ...

    assert hello.sql is None  # composed at the first call, from what the server declares
    async with session(pg_dsn):
        assert await hello("you") == "hello you"
    assert hello.sql == 'SELECT "Odd Schema"."Hello"("who" => %b::pg_catalog.text)'
    pg_exec('DROP SCHEMA "Odd Schema" CASCADE')


async def test_stub_exposes_its_sql_and_metadata(users: str) -> None:
    """A decorated stub keeps its name and shows the SQL it sends (for @procedure, once resolved)."""

    @procedure("user_name")
    async def name_of(id: int) -> str | None: ...

    assert name_of.sql is None
    async with session(users):
        await name_of(1)
    assert name_of.sql == 'SELECT "user_name"("id" => %b::integer)'
    assert aset_email.sql == "UPDATE users SET email = %b WHERE id = %b"
    assert aget_user.__name__ == "aget_user"
    assert aget_user.__qualname__ == "aget_user"


async def test_tracebacks_name_the_stub_and_show_the_generated_source() -> None:
    """A generated caller's frame says which stub it is, and its source line is there to read."""
    import traceback

    with pytest.raises(NoSessionError) as info:
        await aget_user(1)
    frames = traceback.extract_tb(info.value.__traceback__)
    caller = next(f for f in frames if f.filename.startswith("<pgdecor generated"))
    assert (caller.filename, caller.name) == (
        "<pgdecor generated caller of tests.usercode.userdb.aget_user>",
        "aget_user",
    )
    assert caller.line is not None
    assert "_pgdecor_run" in caller.line
