"""pydantic models, attrs classes and msgspec Structs as row types and field types, as dataclasses are.

Each of tests/usercode/rows_pydantic.py, rows_attrs.py and rows_msgspec.py declares the same row types and stubs with its
library; every test here runs over the three.

These are the async stubs' tests; tests/rows/test_records.py, the sync stubs' same tests, is generated from them by
tools/async_to_sync.py.
"""

import importlib
from types import ModuleType

import pytest

from pgdecor import MappingError, check, session
from tests.fix_db import Exec

SCHEMA = """
CREATE TYPE address AS (street text, city text);
CREATE TABLE people (
    id int PRIMARY KEY, name text NOT NULL, age int,
    address address NOT NULL, profile jsonb NOT NULL, homes address[] NOT NULL
);
INSERT INTO people VALUES
    (1, 'ann', 36, ROW('1 Main St', 'Springfield'),
     '{"since": "2020-01-02", "score": 1.5, "home": {"street": "2 Elm St", "city": "Shelbyville"}}',
     ARRAY[ROW('3 Oak St', 'Ogdenville')]::address[]),
    (2, 'bob', NULL, ROW('4 Pine St', 'Capital City'), '{"since": "2021-03-04", "score": 2, "home": null}', '{}');
CREATE FUNCTION get_person(id int) RETURNS SETOF people LANGUAGE sql STABLE
    AS $$ SELECT * FROM people p WHERE p.id = get_person.id $$;
CREATE FUNCTION all_people() RETURNS SETOF people LANGUAGE sql STABLE AS $$ SELECT * FROM people ORDER BY id $$;
CREATE FUNCTION move(id int, address address) RETURNS SETOF people LANGUAGE sql
    AS $$ UPDATE people p SET address = move.address WHERE p.id = move.id RETURNING * $$;
"""


@pytest.fixture(params=["pydantic", "attrs", "msgspec"])
def rows(request: pytest.FixtureRequest) -> ModuleType:
    """The row types and stubs made with one library."""
    return importlib.import_module(f"tests.usercode.rows_{request.param}")


@pytest.fixture
def people(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(SCHEMA)
    return pg_dsn


def notes(err: BaseException) -> str:
    return "\n".join(getattr(err, "__notes__", ()))


async def test_rows_become_models_with_nested_composites_arrays_and_json(rows: ModuleType, people: str) -> None:
    """A row fills a model by column name, its composite, array-of-composite and jsonb columns nested models."""
    async with session(people):
        assert await rows.aload_person(1) == rows.ANN
        assert await rows.aget_person(2) == rows.BOB
        assert await rows.aget_person(99) is None
        assert await rows.aall_people() == [rows.ANN, rows.BOB]


async def test_models_are_sent_as_composite_and_json_arguments(rows: ModuleType, people: str) -> None:
    """A model argument fills a composite parameter by field name, and a json one as an object of its fields."""
    async with session(people):
        assert (await rows.amove(1, rows.NEW_ADDRESS)).address == rows.NEW_ADDRESS
        await rows.aset_profile(2, rows.NEW_PROFILE)
        assert (await rows.aget_person(2)).profile == rows.NEW_PROFILE


if True:  # ASYNC
    # `check` reads the stubs of both kinds of a module at once: the async source alone runs it.

    def test_check_compares_each_field_type_and_nullability(rows: ModuleType, people: str) -> None:
        """`pgdecor check` finds a field of the wrong type (top-level or in a composite) and a non-Optional field
        over a nullable column, and nothing in the stubs that fit."""
        problems = {p.stub.rsplit(".", 1)[1]: str(p) for p in check([rows], people)}
        assert sorted(problems) == ["astrict_age", "awrong_age", "strict_age", "wrong_age", "wrong_home"]
        assert "column 'age' is int4, read as int, not str; the stub says tests.usercode.rows_" in problems["wrong_age"]
        assert "column 'age' may be NULL (people.age is not NOT NULL)" in problems["strict_age"]
        assert "annotate it `int | None`" in problems["strict_age"]
        assert "column 'city' is text, read as str, not int" in problems["wrong_home"]


async def test_a_column_of_another_type_than_the_field_is_refused(rows: ModuleType, people: str) -> None:
    """Calling a stub whose model field does not fit the column raises MappingError, never a converted value."""
    with pytest.raises(MappingError, match=r"column 'age' is int4, read as int, not str"):
        async with session(people):
            await rows.awrong_age(1)


async def test_null_into_a_field_not_optional_is_refused(rows: ModuleType, people: str) -> None:
    """NULL for a field not annotated Optional raises MappingError naming the column and field; a value fits."""
    with pytest.raises(MappingError, match=r"column 'age' is NULL but field .*StrictAge\.age is int"):
        async with session(people):
            await rows.astrict_age(2)
    async with session(people):
        assert (await rows.astrict_age(1)).age == 36


async def test_a_validation_error_names_the_stub_and_the_columns(rows: ModuleType, people: str) -> None:
    """What a model's validation raises for a row reaches the caller as it is, with a note naming the stub and the
    columns (the one refused, where the library says which)."""
    with pytest.raises(ValueError, match="40") as caught:
        async with session(people):
            await rows.aadult(1)
    at_fault = "column 'age' of " if rows.__name__ == "tests.usercode.rows_pydantic" else ""
    expected = (
        f"{rows.__name__}.aadult: {rows.__name__}.Adult refused {at_fault}the row the query returned (columns id, age)"
    )
    assert notes(caught.value) == expected
    async with session(people):
        assert (await rows.aadult(2)).age is None


async def test_validation_errors_of_nested_models_name_the_column(rows: ModuleType, people: str) -> None:
    """A nested model refusing a composite's fields, or a JSON object, gets one note naming the stub and the column."""
    with pytest.raises(ValueError, match="Springfield") as composite:
        async with session(people):
            await rows.alocal(1)
    at_fault = "column 'city' of " if rows.__name__ == "tests.usercode.rows_pydantic" else ""
    assert notes(composite.value) == (
        f"{rows.__name__}.alocal: {rows.__name__}.LocalAddress refused {at_fault}the value of column 'address' "
        "(type address) (columns street, city)"
    )
    with pytest.raises(ValueError, match="10") as json:
        async with session(people):
            await rows.avetted(1)
    assert notes(json.value) == (
        f"{rows.__name__}.avetted: while making {rows.__name__}.VettedProfile from the json value of column 'profile'"
    )


async def test_types_pydantic_makes_itself_are_left_to_it(people: str) -> None:
    """A field of a type pydantic makes itself (SecretStr, HttpUrl) takes the column's value as pydantic does, and
    pydantic's refusal of a NULL for it names the stub and the column."""
    from pydantic import ValidationError

    from tests.usercode import rows_pydantic as rows

    async with session(people):
        ann = await rows.aaccount(1)
        assert ann is not None
        assert (ann.secret.get_secret_value(), str(ann.site)) == ("ann", "https://example.org/ann")
        with pytest.raises(ValidationError, match="secret") as caught:
            await rows.aaccount(2)
    assert notes(caught.value) == (
        "tests.usercode.rows_pydantic.aaccount: tests.usercode.rows_pydantic.Account refused column 'secret' of the row the query returned "
        "(columns id, secret, site)"
    )
