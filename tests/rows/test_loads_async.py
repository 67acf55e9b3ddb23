"""The annotation is the contract: a column whose values are not of the annotated type raises `MappingError`
naming the stub, the column, its type and the fix, the first time its layout is seen, and never converts a value
by losing part of it. Return annotations pgdecor cannot honour fail at import.

These are the async stubs' tests; tests/rows/test_loads.py, the sync stubs' same tests, is generated from them by
tools/async_to_sync.py."""

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
async def text_as_int() -> int: ...


@query("SELECT 1.5::numeric")
async def numeric_as_int() -> int: ...


@query("SELECT 2.5::float8")
async def float_as_int() -> int: ...


@query("SELECT 1")
async def int_as_str() -> str: ...


@query("SELECT 'x'::text AS a")
async def text_into_int_field() -> Row: ...


@query("SELECT 1.5::numeric AS a")
async def numeric_into_int_field() -> Row: ...


@query("SELECT g FROM generate_series(1, 3) g")
async def ints_as_strs() -> list[str]: ...


@query("SELECT now()::timestamp AS day")
async def timestamp_as_date() -> Dated: ...


@query("SELECT ARRAY[1, 2]")
async def int_array_as_strs() -> list[list[str]]: ...


@query("SELECT true")
async def bool_as_int() -> int: ...


@query("SELECT 1")
async def int_as_record() -> tuple[Any, ...]: ...


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
async def test_a_column_of_another_type_than_annotated_raises(
    pg_dsn: str, stub: Callable[[], Any], message: str
) -> None:
    """Every wrong-type case: `MappingError` naming the stub and the column, at every call (the layout is
    refused, not kept), and nothing returned."""
    async with session(pg_dsn):
        for _ in range(2):
            with pytest.raises(MappingError, match=rf"{re.escape(__name__)}\.{stub.__name__}: {message}"):
                await stub()


async def test_a_function_whose_out_parameter_changed_type_is_refused(pg_dsn: str, pg_exec: Exec) -> None:
    """A function changed to ``OUT total text`` behind a ``total: Decimal`` field: the next process's calls
    raise instead of handing a str where a Decimal was promised."""
    pg_exec("CREATE FUNCTION order_total(OUT total text) LANGUAGE sql AS $$ SELECT 'x' $$")

    @procedure
    async def order_total() -> Total: ...

    async with session(pg_dsn):
        with pytest.raises(MappingError, match=r"column 'total' is text, read as str, not decimal.Decimal"):
            await order_total()


@query("SELECT 1::int4 AS a")
async def int4_row() -> Row: ...


@query("SELECT 7::int8")
async def int8_as_float() -> float: ...


@query("SELECT 1.25::numeric")
async def numeric_as_decimal() -> Decimal: ...


@query("SELECT '2024-05-06'::date")
async def a_date() -> dt.date: ...


@query("SELECT ARRAY[ARRAY['a'], ARRAY['b']]")
async def nested() -> list[list[str]] | None: ...


@query("SELECT '<a/>'::xml")
async def xml_as_str() -> str: ...


async def test_columns_of_the_annotated_type_are_returned_as_they_are(pg_dsn: str) -> None:
    """What fits is untouched: an int for `float` too (the numeric tower), a type psycopg reads as text for
    `str`, arrays of any dimension."""
    async with session(pg_dsn):
        assert await int4_row() == Row(1)
        assert await int8_as_float() == 7
        assert await numeric_as_decimal() == Decimal("1.25")
        assert await a_date() == dt.date(2024, 5, 6)
        assert await nested() == [["a"], ["b"]]
        assert await xml_as_str() == "<a/>"


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

    async def stub() -> None: ...

    stub.__annotations__["return"] = annotation
    with pytest.raises(SignatureError, match=rf"{re.escape(__name__)}\..*stub: return annotation {message} .*use"):
        query("SELECT 1")(stub)
