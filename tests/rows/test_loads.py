# Generated from tests/rows/test_loads_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.rows.test_loads_async`, generated from it: see there."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, TypedDict

import pytest

from pgdecor import MappingError, SignatureError, procedure, query, session
from tests.fix_db import Exec


@dataclass
class Row:
    a: int


class Total(NamedTuple):
    total: Decimal


class Dated(TypedDict):
    day: dt.date


@query("SELECT 'abc'::text")
def text_as_int() -> int: ...


@query("SELECT 1.5::numeric")
def numeric_as_int() -> int: ...


@query("SELECT 2.5::float8")
def float_as_int() -> int: ...


@query("SELECT 1")
def int_as_str() -> str: ...


@query("SELECT 'x'::text AS a")
def text_into_int_field() -> Row: ...


@query("SELECT 1.5::numeric AS a")
def numeric_into_int_field() -> Row: ...


@query("SELECT g FROM generate_series(1, 3) g")
def ints_as_strs() -> list[str]: ...


@query("SELECT now()::timestamp AS day")
def timestamp_as_date() -> Dated: ...


@query("SELECT ARRAY[1, 2]")
def int_array_as_strs() -> list[list[str]]: ...


@query("SELECT true")
def bool_as_int() -> int: ...


@query("SELECT 1")
def int_as_record() -> tuple[Any, ...]: ...


#: Each stub, and what its error must say: the column, its type and what it is read as.
WRONG: list[tuple[Callable[[], Any], str]] = [
    (text_as_int, r"column 'text' is text, read as str, not int; annotate it `str`, or cast it in the SQL to bigint"),
    (
        numeric_as_int,
        r"column 'numeric' is numeric, read as Decimal, not int; annotate it `Decimal`, or cast .* rounds",
    ),
    (float_as_int, r"column 'float8' is float8, read as float, not int"),
    (
        int_as_str,
        r"column '\?column\?' is int4, read as int, not str; annotate it `int`, or cast it in the SQL to text",
    ),
    (text_into_int_field, r"column 'a' is text, read as str, not int"),
    (numeric_into_int_field, r"column 'a' is numeric, read as Decimal, not int"),
    (ints_as_strs, r"column 'g' is int4, read as int, not str"),
    (timestamp_as_date, r"column 'day' is timestamp, read as datetime, not date"),
    (int_array_as_strs, r"column 'array' \(an element\) is int4, read as int, not str"),
    (bool_as_int, r"column '\?column\?' is bool, read as bool, not int"),
    (int_as_record, r"column '\?column\?' is int4, read as int, not tuple\[Any, \.\.\.\]"),
]


@pytest.mark.parametrize(("stub", "message"), WRONG, ids=[s.__name__ for s, _ in WRONG])
def test_a_column_of_another_type_than_annotated_raises(pg_dsn: str, stub: Callable[[], Any], message: str) -> None:
    """Every wrong-type case: `MappingError` naming the stub and the column, at every call (the layout is
    refused, not kept), and nothing returned."""
    with session(pg_dsn):
        for _ in range(2):
            with pytest.raises(MappingError, match=rf"{re.escape(__name__)}\.{stub.__name__}: {message}"):
                stub()


def test_a_function_whose_out_parameter_changed_type_is_refused(pg_dsn: str, pg_exec: Exec) -> None:
    """A function changed to ``OUT total text`` behind a ``total: Decimal`` field: the next process's calls
    raise instead of handing a str where a Decimal was promised."""
    pg_exec("CREATE FUNCTION order_total(OUT total text) LANGUAGE sql AS $$ SELECT 'x' $$")

    @procedure
    def order_total() -> Total: ...

    with (
        session(pg_dsn),
        pytest.raises(MappingError, match=r"column 'total' is text, read as str, not decimal.Decimal"),
    ):
        order_total()


@query("SELECT 1::int4 AS a")
def int4_row() -> Row: ...


@query("SELECT 7::int8")
def int8_as_float() -> float: ...


@query("SELECT 1.25::numeric")
def numeric_as_decimal() -> Decimal: ...


@query("SELECT '2024-05-06'::date")
def a_date() -> dt.date: ...


@query("SELECT ARRAY[ARRAY['a'], ARRAY['b']]")
def nested() -> list[list[str]] | None: ...


@query("SELECT '<a/>'::xml")
def xml_as_str() -> str: ...


def test_columns_of_the_annotated_type_are_returned_as_they_are(pg_dsn: str) -> None:
    """What fits is untouched: an int for `float` too (the numeric tower), a type psycopg reads as text for
    `str`, arrays of any dimension."""
    with session(pg_dsn):
        assert int4_row() == Row(1)
        assert int8_as_float() == 7
        assert numeric_as_decimal() == Decimal("1.25")
        assert a_date() == dt.date(2024, 5, 6)
        assert nested() == [["a"], ["b"]]
        assert xml_as_str() == "<a/>"


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (set[int], r"set\[int\]"),
        (tuple[int, str], r"tuple\[int, str\]"),
        (object, r"object"),
        (frozenset, r"frozenset"),
    ],
)
def test_return_annotations_pgdecor_cannot_honour_fail_at_import(annotation: Any, message: str) -> None:
    """`-> set[int]`, `-> tuple[int, str]`, `-> object`: a `SignatureError` when decorating, naming the stub and
    what to write instead."""

    def stub() -> None: ...

    stub.__annotations__["return"] = annotation
    with pytest.raises(SignatureError, match=rf"{re.escape(__name__)}\..*stub: return annotation {message} .*use"):
        query("SELECT 1")(stub)
