"""The whole function surface: procedures, OUT parameters, unnamed and overloaded functions, defaults, VARIADIC.

These are the async stubs' tests; tests/plan/test_catalog.py, the sync stubs' same tests, is generated from them by
tools/async_to_sync.py."""

from dataclasses import dataclass, field
from typing import Annotated

import psycopg
import pytest

from pgdecor import (
    DEFAULT,
    AmbiguousFunctionError,
    Arg,
    NotFoundError,
    UndefinedFunctionError,
    procedure,
    session,
)
from tests.fix_db import Exec


@dataclass
class Pair:
    total: int
    product: int


async def test_procedure_is_called_with_call(pg_dsn: str, pg_exec: Exec) -> None:
    """A PostgreSQL procedure is run with CALL; its work is committed with the session."""
    pg_exec("""
        CREATE TABLE log (msg text);
        CREATE PROCEDURE write_log(msg text) LANGUAGE sql AS $$ INSERT INTO log VALUES (msg) $$;
    """)

    @procedure
    async def write_log(msg: str) -> None: ...

    async with session(pg_dsn):
        await write_log("hello")
    assert write_log.sql == 'CALL "write_log"("msg" => %b::pg_catalog.text)'
    assert pg_exec("SELECT msg FROM log") == [("hello",)]


async def test_procedure_out_and_inout_parameters_come_back_as_a_row(pg_dsn: str, pg_exec: Exec) -> None:
    """OUT parameters are passed as NULL and INOUT ones as arguments; the result row maps onto the dataclass."""
    pg_exec("""
        CREATE PROCEDURE sum_and_product(a int, INOUT total int, OUT product int) LANGUAGE plpgsql AS $$
        BEGIN total := a + total; product := a * 3; END $$;
    """)

    @procedure
    async def sum_and_product(a: int, total: int) -> Pair: ...

    async with session(pg_dsn):
        assert await sum_and_product(2, total=5) == Pair(7, 6)
    assert sum_and_product.sql == (
        'CALL "sum_and_product"("a" => %b::integer, "total" => %b::integer, "product" => NULL)'
    )


async def test_function_out_parameters_and_returns_table(pg_dsn: str, pg_exec: Exec) -> None:
    """OUT parameters make one row; RETURNS TABLE makes a set of rows."""
    pg_exec("""
        CREATE FUNCTION pair(a int, b int, OUT total int, OUT product int) LANGUAGE sql
        AS $$ SELECT a + b, a * b $$;
        CREATE FUNCTION pairs(n int) RETURNS TABLE (total int, product int) LANGUAGE sql
        AS $$ SELECT i + i, i * i FROM generate_series(1, n) i $$;
    """)

    @procedure
    async def pair(a: int, b: int) -> Pair: ...

    @procedure
    async def pairs(n: int) -> list[Pair]: ...

    async with session(pg_dsn):
        assert await pair(2, 3) == Pair(5, 6)
        assert await pairs(3) == [Pair(2, 1), Pair(4, 4), Pair(6, 9)]


async def test_unnamed_parameters_are_passed_by_position(pg_dsn: str, pg_exec: Exec) -> None:
    """A function declared with unnamed parameters is called positionally, in the stub's order."""
    pg_exec("CREATE FUNCTION minus(int, int) RETURNS int LANGUAGE sql AS $$ SELECT $1 - $2 $$")

    @procedure
    async def minus(a: int, b: int) -> int: ...

    async with session(pg_dsn):
        assert await minus(10, 3) == 7
        assert await minus(b=3, a=10) == 7
    assert minus.sql == 'SELECT "minus"(%b::integer, %b::integer)'


async def test_overloads_are_chosen_by_the_stub_parameter_types(pg_dsn: str, pg_exec: Exec) -> None:
    """Among same-named functions, the one whose argument types fit the annotations is called, with casts."""
    pg_exec("""
        CREATE FUNCTION kind(int) RETURNS text LANGUAGE sql AS $$ SELECT 'int ' || $1 $$;
        CREATE FUNCTION kind(text) RETURNS text LANGUAGE sql AS $$ SELECT 'text ' || $1 $$;
        CREATE FUNCTION kind(date) RETURNS text LANGUAGE sql AS $$ SELECT 'date ' || $1 $$;
    """)

    @procedure("kind")
    async def kind_of_int(x: int) -> str: ...

    @procedure("kind")
    async def kind_of_text(x: str) -> str: ...

    async with session(pg_dsn):
        assert await kind_of_int(5) == "int 5"
        assert await kind_of_text("5") == "text 5"


async def test_ambiguous_overloads_are_an_error_until_annotated(pg_dsn: str, pg_exec: Exec) -> None:
    """int fits both int4 and int8 overloads: the error lists them; Annotated[int, "bigint"] picks one."""
    pg_exec("""
        CREATE FUNCTION size(int) RETURNS text LANGUAGE sql AS $$ SELECT 'int4' $$;
        CREATE FUNCTION size(bigint) RETURNS text LANGUAGE sql AS $$ SELECT 'int8' $$;
    """)

    @procedure
    async def size(x: int) -> str: ...

    @procedure("size")
    async def big_size(x: Annotated[int, "bigint"]) -> str: ...

    with pytest.raises(AmbiguousFunctionError) as info:
        async with session(pg_dsn):
            await size(1)
    assert "size(integer)" in str(info.value)
    assert "size(bigint)" in str(info.value)
    assert 'Annotated[int, "int8"]' in str(info.value)
    assert isinstance(info.value, LookupError)
    assert info.value.sqlstate == "42725"
    async with session(pg_dsn):
        assert await big_size(1) == "int8"


async def test_no_fitting_overload_lists_the_candidates(pg_dsn: str, pg_exec: Exec) -> None:
    """When no overload fits, the error shows each candidate and why it does not fit."""
    pg_exec("""
        CREATE FUNCTION area(w int, h int) RETURNS int LANGUAGE sql AS $$ SELECT w * h $$;
        CREATE FUNCTION area(r float8) RETURNS float8 LANGUAGE sql AS $$ SELECT pi() * r * r $$;
    """)

    @procedure
    async def area(w: int, height: int) -> int: ...

    with pytest.raises(UndefinedFunctionError) as info:
        async with session(pg_dsn):
            await area(1, 2)
    message = str(info.value)
    assert "area(w integer, h integer): it has no parameter 'height'" in message
    assert "area(r double precision): it has no parameter 'w'" in message


async def test_default_leaves_an_argument_to_the_server(pg_dsn: str, pg_exec: Exec) -> None:
    """A parameter defaulting to pgdecor.DEFAULT is left out of the call when not given."""
    pg_exec("""
        CREATE FUNCTION greet(name text, greeting text DEFAULT 'hello', punct text DEFAULT '!')
        RETURNS text LANGUAGE sql AS $$ SELECT greeting || ' ' || name || punct $$;
    """)

    @procedure
    async def greet(name: str, greeting: str = DEFAULT, punct: str = DEFAULT) -> str: ...

    async with session(pg_dsn):
        assert await greet("ann") == "hello ann!"
        assert await greet("ann", punct="?") == "hello ann?"
        assert await greet("ann", "hi") == "hi ann!"


async def test_default_with_unnamed_parameters_only_at_the_end(pg_dsn: str, pg_exec: Exec) -> None:
    """Unnamed parameters can be left to their default only from the end."""
    pg_exec("CREATE FUNCTION scale(int, int DEFAULT 10) RETURNS int LANGUAGE sql AS $$ SELECT $1 * $2 $$")

    @procedure
    async def scale(x: int, factor: int = DEFAULT) -> int: ...

    async with session(pg_dsn):
        assert await scale(3) == 30
        assert await scale(3, 2) == 6


async def test_variadic_arguments_map_to_star_args(pg_dsn: str, pg_exec: Exec) -> None:
    """`*values` in the stub is the function's VARIADIC argument."""
    pg_exec("""
        CREATE FUNCTION total(label text, VARIADIC nums int[]) RETURNS text LANGUAGE sql
        AS $$ SELECT label || (SELECT sum(n) FROM unnest(nums) n) $$;
    """)

    @procedure
    async def total(label: str, *nums: int) -> str: ...

    async with session(pg_dsn):
        assert await total("sum=", 1, 2, 3) == "sum=6"
    assert total.sql == 'SELECT "total"("label" => %b::pg_catalog.text, VARIADIC "nums" => %b::integer[])'


async def test_sqlstates_map_to_declared_exceptions(pg_dsn: str, pg_exec: Exec) -> None:
    """`errors={"P0002": NotFoundError}` turns that SQLSTATE into the given exception, psycopg's as its cause."""
    pg_exec("""
        CREATE FUNCTION find_thing(id int) RETURNS text LANGUAGE plpgsql AS $$
        BEGIN
            IF id > 10 THEN RAISE EXCEPTION 'no thing %', id USING ERRCODE = 'P0002'; END IF;
            IF id < 0 THEN RAISE EXCEPTION 'negative' USING ERRCODE = 'PG001'; END IF;
            RETURN 'thing ' || id;
        END $$;
    """)

    class NegativeError(ValueError):
        pass

    @procedure(errors={"P0002": NotFoundError, "PG001": NegativeError})
    async def find_thing(id: int) -> str: ...

    async with session(pg_dsn):
        assert await find_thing(1) == "thing 1"
    with pytest.raises(NotFoundError) as info:
        async with session(pg_dsn):
            await find_thing(11)
    assert str(info.value) == "no thing 11"
    assert isinstance(info.value.__cause__, psycopg.errors.NoDataFound)
    assert f"pgdecor: SQLSTATE P0002 from {__name__}.test_sqlstates_map_to" in getattr(info.value, "__notes__", [""])[0]
    with pytest.raises(NegativeError, match="negative"):
        async with session(pg_dsn):
            await find_thing(-1)


if True:  # ASYNC
    pass  # deciding at decoration: one kind is enough
else:

    def test_bad_error_maps_fail_at_decoration() -> None:
        """An errors= key must be a SQLSTATE."""
        from pgdecor import SignatureError

        with pytest.raises(SignatureError, match="'nope' is not a SQLSTATE"):
            procedure("f", errors={"nope": NotFoundError})


async def test_single_composite_function_returning_null_is_no_row(pg_dsn: str, pg_exec: Exec) -> None:
    """A function returning one row type (not SETOF) that returns NULL gives None for `T | None`."""
    pg_exec("""
        CREATE TABLE items (id int, value text);
        INSERT INTO items VALUES (1, 'one');
        CREATE FUNCTION item(int) RETURNS items LANGUAGE sql AS $$ SELECT * FROM items WHERE id = $1 $$;
    """)

    @dataclass
    class Item:
        id: int
        value: str

    @procedure
    async def item(id: int) -> Item | None: ...

    async with session(pg_dsn):
        assert await item(1) == Item(1, "one")
        assert await item(2) is None


async def test_argument_types_are_cast_to_the_declared_ones(pg_dsn: str, pg_exec: Exec) -> None:
    """A Python int reaches smallint and bigint parameters alike; the declared type is what is sent."""
    pg_exec("""
        CREATE FUNCTION small(x smallint) RETURNS text LANGUAGE sql AS $$ SELECT pg_typeof(x)::text $$;
        CREATE FUNCTION big(x bigint) RETURNS text LANGUAGE sql AS $$ SELECT pg_typeof(x)::text $$;
    """)

    @procedure
    async def small(x: int) -> str: ...

    @procedure
    async def big(x: int) -> str: ...

    async with session(pg_dsn):
        assert await small(7) == "smallint"
        assert await big(7) == "bigint"
        assert await big(2**40) == "bigint"


async def test_arguments_python_cannot_name_are_passed_by_their_sql_names(pg_dsn: str, pg_exec: Exec) -> None:
    """A parameter annotated `Arg("from")` passes the argument `from` (by name, with a default left to the server
    and overloads told apart as for any parameter); a function whose name has a `.` is named in double quotes."""
    pg_exec("""
        CREATE FUNCTION "class"("from" int, "def" text DEFAULT 'x', "1st" int DEFAULT 0) RETURNS text
            LANGUAGE sql AS $$ SELECT "def" || ':' || "from" || ':' || "1st" $$;
        CREATE FUNCTION "class"("from" float8) RETURNS text LANGUAGE sql AS $$ SELECT 'float ' || "from" $$;
        CREATE FUNCTION "welcome.html"("pass" boolean) RETURNS text LANGUAGE sql
            AS $$ SELECT CASE WHEN "pass" THEN '<h1>Welcome</h1>' END $$;
    """)

    @procedure("class")
    async def class_(
        from_: Annotated[int, Arg("from")],
        def_: Annotated[str, Arg("def")] = DEFAULT,
        first: Annotated[int, Arg("1st")] = 0,
    ) -> str: ...

    @procedure("class")
    async def class_float(from_: Annotated[float, "float8", Arg("from")]) -> str: ...

    @procedure('"welcome.html"')
    async def welcome_html(pass_: Annotated[bool, Arg("pass")] | None) -> str | None: ...

    async with session(pg_dsn):
        assert await class_(1, "y", first=2) == "y:1:2"
        assert await class_(from_=3) == "x:3:0"
        assert await class_float(1.5) == "float 1.5"
        assert await welcome_html(True) == "<h1>Welcome</h1>"
        assert await welcome_html(None) is None
    assert class_.sql == 'SELECT "class"("from" => %b::integer, "1st" => %b::integer)'
    assert welcome_html.sql == 'SELECT "welcome.html"("pass" => %b::boolean)'


async def test_fields_are_filled_from_the_columns_their_metadata_names(pg_dsn: str, pg_exec: Exec) -> None:
    """A dataclass field with `field(metadata={"column": ...})` is filled from that column, in rows, in composite
    values and arrays of them, and is sent as that attribute in a composite argument."""
    pg_exec("""
        CREATE TYPE link AS ("http://postgrest.com/foo" text, "from" int);
        CREATE FUNCTION links(n int) RETURNS SETOF link LANGUAGE sql
            AS $$ SELECT ROW('http://x/' || i, i)::link FROM generate_series(1, n) i $$;
        CREATE FUNCTION echo(l link) RETURNS link LANGUAGE sql AS $$ SELECT l $$;
        CREATE FUNCTION wrapped(n int, OUT "in" link[], OUT "class" int) LANGUAGE sql
            AS $$ SELECT array_agg(ROW('http://x/' || i, i)::link ORDER BY i), n FROM generate_series(1, n) i $$;
    """)

    @dataclass
    class Link:
        url: str = field(metadata={"column": "http://postgrest.com/foo"})
        from_: int = field(metadata={"column": "from"})

    @dataclass
    class Wrapped:
        in_: list[Link] = field(metadata={"column": "in"})
        class_: int = field(metadata={"column": "class"})

    @procedure
    async def links(n: int) -> list[Link]: ...

    @procedure
    async def echo(l: Link) -> Link: ...  # noqa: E741 - the function's argument

    @procedure
    async def wrapped(n: int) -> Wrapped: ...

    async with session(pg_dsn):
        assert await links(2) == [Link("http://x/1", 1), Link("http://x/2", 2)]
        assert await echo(Link("http://y", 7)) == Link("http://y", 7)
        assert await wrapped(2) == Wrapped([Link("http://x/1", 1), Link("http://x/2", 2)], 2)
