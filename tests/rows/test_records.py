# Generated from tests/rows/test_records_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.rows.test_records_async`, generated from it: see there."""

import importlib
from types import ModuleType

import pytest

from pgdecor import MappingError, session
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


def test_rows_become_models_with_nested_composites_arrays_and_json(rows: ModuleType, people: str) -> None:
    """A row fills a model by column name, its composite, array-of-composite and jsonb columns nested models."""
    with session(people):
        assert rows.load_person(1) == rows.ANN
        assert rows.get_person(2) == rows.BOB
        assert rows.get_person(99) is None
        assert rows.all_people() == [rows.ANN, rows.BOB]


def test_models_are_sent_as_composite_and_json_arguments(rows: ModuleType, people: str) -> None:
    """A model argument fills a composite parameter by field name, and a json one as an object of its fields."""
    with session(people):
        assert rows.move(1, rows.NEW_ADDRESS).address == rows.NEW_ADDRESS
        rows.set_profile(2, rows.NEW_PROFILE)
        assert rows.get_person(2).profile == rows.NEW_PROFILE


def test_a_column_of_another_type_than_the_field_is_refused(rows: ModuleType, people: str) -> None:
    """Calling a stub whose model field does not fit the column raises MappingError, never a converted value."""
    with pytest.raises(MappingError, match=r"column 'age' is int4, read as int, not str"), session(people):
        rows.wrong_age(1)


def test_null_into_a_field_not_optional_is_refused(rows: ModuleType, people: str) -> None:
    """NULL for a field not annotated Optional raises MappingError naming the column and field; a value fits."""
    with pytest.raises(MappingError, match=r"column 'age' is NULL but field .*StrictAge\.age is int"), session(people):
        rows.strict_age(2)
    with session(people):
        assert rows.strict_age(1).age == 36


def test_a_validation_error_names_the_stub_and_the_columns(rows: ModuleType, people: str) -> None:
    """What a model's validation raises for a row reaches the caller as it is, with a note naming the stub and the
    columns (the one refused, where the library says which)."""
    with pytest.raises(ValueError, match="40") as caught, session(people):
        rows.adult(1)
    at_fault = "column 'age' of " if rows.__name__ == "tests.usercode.rows_pydantic" else ""
    expected = (
        f"{rows.__name__}.adult: {rows.__name__}.Adult refused {at_fault}the row the query returned (columns id, age)"
    )
    assert notes(caught.value) == expected
    with session(people):
        assert rows.adult(2).age is None


def test_validation_errors_of_nested_models_name_the_column(rows: ModuleType, people: str) -> None:
    """A nested model refusing a composite's fields, or a JSON object, gets one note naming the stub and the column."""
    with pytest.raises(ValueError, match="Springfield") as composite, session(people):
        rows.local(1)
    at_fault = "column 'city' of " if rows.__name__ == "tests.usercode.rows_pydantic" else ""
    assert notes(composite.value) == (
        f"{rows.__name__}.local: {rows.__name__}.LocalAddress refused {at_fault}the value of column 'address' "
        "(type address) (columns street, city)"
    )
    with pytest.raises(ValueError, match="10") as json, session(people):
        rows.vetted(1)
    assert notes(json.value) == (
        f"{rows.__name__}.vetted: while making {rows.__name__}.VettedProfile from the json value of column 'profile'"
    )


def test_types_pydantic_makes_itself_are_left_to_it(people: str) -> None:
    """A field of a type pydantic makes itself (SecretStr, HttpUrl) takes the column's value as pydantic does, and
    pydantic's refusal of a NULL for it names the stub and the column."""
    from pydantic import ValidationError

    from tests.usercode import rows_pydantic as rows

    with session(people):
        ann = rows.account(1)
        assert ann is not None
        assert (ann.secret.get_secret_value(), str(ann.site)) == ("ann", "https://example.org/ann")
        with pytest.raises(ValidationError, match="secret") as caught:
            rows.account(2)
    assert notes(caught.value) == (
        "tests.usercode.rows_pydantic.account: tests.usercode.rows_pydantic.Account refused column 'secret' of the row the query returned "
        "(columns id, secret, site)"
    )
