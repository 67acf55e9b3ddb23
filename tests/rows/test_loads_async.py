"""The annotation is the contract for async stubs too: a column whose values are not of the annotated type raises
`MappingError` naming the stub, the column, its type and the fix, at every call; what fits is returned as it is.
The tests of tests/rows/test_loads.py that had no async twin, written as tools/async_to_sync.py reads an async
source (their sync twins are those of test_loads.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from pgdecor import MappingError, procedure, query, session
from tests.fix_db import Exec
from tests.rows.test_loads import WRONG, Dated, Row, Total


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


#: Each stub, and what its error must say (test_loads.py's cases, in the same order).
AWRONG: list[tuple[Callable[[], Awaitable[Any]], str]] = [
    (stub, message)
    for stub, (_, message) in zip(
        [text_as_int, numeric_as_int, float_as_int, int_as_str, text_into_int_field, ints_as_strs,
         timestamp_as_date, int_array_as_strs, bool_as_int, int_as_record],
        WRONG,
        strict=True,
    )
]  # fmt: skip


@pytest.mark.parametrize(("stub", "message"), AWRONG, ids=[s.__name__ for s, _ in AWRONG])
async def test_a_column_of_another_type_than_annotated_raises(
    pg_dsn: str, stub: Callable[[], Awaitable[Any]], message: str
) -> None:
    """Every wrong-type case: `MappingError` naming the stub and the column, at every call (the layout is
    refused, not kept), and nothing returned."""
    async with session(pg_dsn):
        for _ in range(2):
            with pytest.raises(MappingError, match=rf"test_loads_async\.{stub.__name__}: {message}"):
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
