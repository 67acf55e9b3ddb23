"""Hostile input: every value either round-trips exactly, or raises an `ArgumentError` naming the parameter before
anything is sent; nothing is stored that the caller did not give."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import math
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgdecor import ArgumentError, MappingError, procedure, query, session
from pgdecor._rows.json_dump import MAX_JSON_DEPTH

JSON_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
#: What JSON represents exactly: JSON's own types, with string keys.
EXACT = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not (f.is_integer() and abs(f) >= 1e16) and str(f) != "-0.0")
    | JSON_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(JSON_TEXT, inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
#: Values JSON has no type for, which in a place the annotation leaves open (`Any`, `dict[str, Any]`) would come
#: back as strings (or not at all): bytes, decimals (NaN, sNaN and infinities too), dates, times, UUIDs, intervals,
#: network addresses.
TEXT_FORMS = st.one_of(
    st.binary(max_size=8), st.decimals(), st.dates(), st.datetimes(), st.times(), st.uuids(), st.timedeltas(),
    st.ip_addresses(),
)  # fmt: skip
#: Values JSON cannot hold as they are: each must be refused.
HOSTILE = st.one_of(
    TEXT_FORMS,
    st.builds(object),
    st.sets(st.integers(), min_size=1, max_size=3),
    st.frozensets(st.integers(), min_size=1, max_size=3),
    st.tuples(st.integers()),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e16, -6.518336033871933e16, -0.0]),
    st.complex_numbers(allow_nan=False, allow_infinity=False),
    st.text(min_size=1).map(lambda s: s + "\x00"),
    st.sampled_from(["\ud800", "a\udfff", "\udbff\udc00x"[:1]]),
    st.dictionaries(st.integers() | st.none() | st.booleans() | st.floats(allow_nan=False), st.integers(),
                    min_size=1, max_size=3),
)  # fmt: skip


@pytest.fixture
def docs(pg_dsn: str, pg_exec: Callable[..., Any]) -> str:
    pg_exec("CREATE TABLE docs (n serial PRIMARY KEY, doc jsonb); CREATE TABLE notes (n serial, body text)")
    pg_exec("CREATE FUNCTION keep_doc(doc jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT doc $$")
    pg_exec("""
        CREATE TYPE measure AS (span interval, data bytea, amount numeric);
        CREATE FUNCTION keep_measure(m measure) RETURNS measure LANGUAGE sql AS $$ SELECT m $$;
    """)
    return pg_dsn


@query("INSERT INTO docs (doc) VALUES (%(doc)s) RETURNING doc")
def store(doc: dict[str, Any]) -> Any: ...


@procedure
def keep_doc(doc: Any) -> Any: ...


@query("INSERT INTO notes (body) VALUES (%(body)s) RETURNING body")
def note(body: str) -> str: ...


@query("SELECT count(*) FROM docs")
def stored() -> int: ...


@query("SELECT count(*) FROM notes")
def notes() -> int: ...


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=EXACT)
def test_json_values_round_trip_exactly(docs: str, value: Any) -> None:
    with session(docs):
        assert store({"v": value}) == {"v": value}
        assert keep_doc(value) == value


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=HOSTILE, nest=st.integers(0, 3))
def test_values_json_cannot_hold_are_refused_before_sending(docs: str, value: Any, nest: int) -> None:
    """Objects, sets, tuples, NaN and infinities, complex numbers, NUL characters, lone surrogates and non-string
    keys raise ArgumentError naming the parameter; none is stored as something else."""
    for _ in range(nest):
        value = {"k": [value]}
    with session(docs):
        with pytest.raises(ArgumentError, match=r"argument 'doc' .*nothing was sent"):
            store({"v": value})
        with pytest.raises(ArgumentError, match=r"argument 'doc' .*nothing was sent"):
            keep_doc([value])
        assert stored() == 0  # and the session's transaction is unharmed


@dataclasses.dataclass
class Entry:
    """A document whose fields say which values JSON has no type for are where."""

    amount: Decimal
    day: dt.date
    at: dt.datetime
    time: dt.time
    ref: uuid.UUID
    amounts: list[Decimal]
    by_name: dict[str, dt.date]
    notes: dict[str, Any]


@procedure("keep_doc")
def keep_entry(doc: Entry) -> Entry: ...


OFFSETS = st.none() | st.integers(-23 * 60, 23 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
ENTRIES = st.builds(
    Entry,
    amount=st.decimals(),
    day=st.dates(),
    at=st.datetimes(timezones=OFFSETS).map(lambda d: d.replace(fold=0)),  # fold says nothing to a fixed offset
    time=st.times(timezones=OFFSETS).map(lambda t: t.replace(fold=0)),
    ref=st.uuids(),
    amounts=st.lists(st.decimals(), max_size=3),
    by_name=st.dictionaries(JSON_TEXT, st.dates(), max_size=2),
    notes=st.dictionaries(JSON_TEXT, EXACT | TEXT_FORMS, max_size=3),
)


def _is_json(value: Any) -> bool:
    """Whether *value* is of a type JSON has (a -0.0, which jsonb turns into 0.0, is refused another way)."""
    return value is None or isinstance(value, (bool, int, float, str, list, dict))


def exactly(value: Any) -> Any:
    """What is equal only for values equal to the digit and of the same types (`Decimal('1.10')` is not
    `Decimal('1.1')`, NaN is NaN), whatever the order of dicts' keys (jsonb keeps its own)."""
    if isinstance(value, dict):
        return sorted((k, exactly(v)) for k, v in value.items())
    if isinstance(value, list):
        return [exactly(v) for v in value]
    if dataclasses.is_dataclass(value):
        return type(value), [exactly(getattr(value, f.name)) for f in dataclasses.fields(value)]
    return type(value), repr(value)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entry=ENTRIES)
def test_values_json_has_no_type_for_come_back_as_themselves_or_are_refused(docs: str, entry: Entry) -> None:
    """Decimals (NaN, sNaN and infinities too), dates, datetimes, times and UUIDs where the annotation says their type
    come back as themselves, to the digit; in a place it leaves open (`dict[str, Any]`), they and
    bytes, intervals and addresses raise ArgumentError naming the parameter and the path, with nothing stored."""
    untyped = [key for key, value in entry.notes.items() if not _is_json(value)]
    with session(docs):
        if untyped:
            where = re.escape(f" at .notes[{untyped[0]!r}]")
            with pytest.raises(ArgumentError, match=rf"argument 'doc' has .*{where}, which JSON has no type for"):
                keep_entry(entry)
        else:
            assert exactly(keep_entry(entry)) == exactly(entry)
        # In a place the annotation leaves open, a dataclass's fields are as open: they would come back as strings.
        with pytest.raises(ArgumentError, match=r"argument 'doc' has .* at \['v'\]\.amount, which JSON has no type"):
            store({"v": entry})
        assert stored() == 0


@dataclasses.dataclass
class Measure:
    span: dt.timedelta | None
    data: bytes | None
    amount: Decimal | None


@procedure("keep_measure")
def keep_measure(m: Measure) -> Measure: ...


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    measure=st.builds(
        Measure, st.timedeltas(), st.binary(max_size=8), st.decimals(allow_nan=False) | st.just(Decimal("NaN"))
    )
)
def test_values_of_a_composite_go_to_the_microsecond(docs: str, measure: Measure) -> None:
    """A composite's fields, which the server parses from their text as their own types, come back as given:
    intervals to the microsecond across timedelta's whole range, bytes, decimals and their infinities."""
    with session(docs):
        assert exactly(keep_measure(measure)) == exactly(measure)


def test_colliding_keys_are_refused_not_merged(docs: str) -> None:
    """``{None: 1, "None": 2}`` would become one key; it is refused, naming the key."""
    with session(docs), pytest.raises(ArgumentError, match="key None"):
        store({None: 1, "None": 2})  # type: ignore[dict-item]


def test_json_nesting_is_bounded_both_ways(docs: str) -> None:
    """Up to MAX_JSON_DEPTH levels go and come back; deeper is an ArgumentError going, a MappingError coming."""
    deep: Any = 0
    for _ in range(MAX_JSON_DEPTH - 1):  # in {"v": ...}: MAX_JSON_DEPTH levels
        deep = [deep]

    @query("SELECT (repeat('[', %(n)s) || repeat(']', %(n)s))::jsonb")
    def nested(n: int) -> Any: ...

    with session(docs):
        assert store({"v": deep}) == {"v": deep}
        with pytest.raises(ArgumentError, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
            store({"v": [deep]})
        with pytest.raises(MappingError, match="nested too deeply"):
            nested(5000)
        assert nested(3) == [[[]]]  # the session goes on


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(codec="utf-8", exclude_characters="\x00")))
def test_text_round_trips(docs: str, text: str) -> None:
    with session(docs):
        assert note(text) == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [("a\x00b", "NUL character"), ("\ud800", "lone surrogate"), ("ok \udfff", "lone surrogate")],
)
def test_text_postgres_cannot_store_is_refused_naming_the_parameter(docs: str, text: str, problem: str) -> None:
    with session(docs):
        with pytest.raises(ArgumentError, match=f"argument 'body' has a {problem}"):
            note(text)
        assert notes() == 0


def test_any_result_returns_the_value(docs: str) -> None:
    """``-> Any`` returns the value as psycopg loads it (a json document, a number)."""

    @query("SELECT '{\"a\": [1, 2]}'::jsonb")
    def document() -> Any: ...

    @query("SELECT 5")
    def five() -> Any: ...

    with session(docs):
        assert document() == {"a": [1, 2]}
        assert five() == 5


def test_nullable_array_result(docs: str, pg_exec: Callable[..., Any]) -> None:
    """A function returning one array that may be NULL: ``-> list[int] | None``, the annotation the NULL error
    advises for ``-> list[int]``."""
    pg_exec(
        "CREATE FUNCTION evens(n int) RETURNS int[] LANGUAGE sql AS $$ SELECT CASE WHEN n > 0 THEN ARRAY[n, n] END $$"
    )

    @procedure
    def evens(n: int) -> list[int] | None: ...

    @procedure("evens")
    def strict_evens(n: int) -> list[int]: ...

    with session(docs):
        assert evens(2) == [2, 2]
        assert evens(0) is None
        with pytest.raises(MappingError, match=r"list\[int\] \| None"):
            strict_evens(0)


@query("INSERT INTO docs (doc) VALUES (%(doc)s) RETURNING doc")
async def astore(doc: dict[str, Any]) -> Any: ...


@query("INSERT INTO notes (body) VALUES (%(body)s) RETURNING body")
async def anote(body: str) -> str: ...


def test_async_stubs_refuse_the_same_values(docs: str) -> None:
    """The checks are the stub's, whichever kind it is: async calls refuse what sync ones do, before sending."""

    async def main() -> None:
        async with session(docs):
            with pytest.raises(ArgumentError, match="argument 'doc' has a value of type set"):
                await astore({"v": {1}})
            with pytest.raises(ArgumentError, match="argument 'body' has a lone surrogate"):
                await anote("\ud800")
            with pytest.raises(ArgumentError, match=r"argument 'doc' has b'' at \['n'\], which JSON has no type"):
                await astore({"n": b"", "": Decimal("-Infinity")})
            with pytest.raises(ArgumentError, match=r"argument 'doc' has Decimal\('-0.0451229895'\) at \['k'\]"):
                await astore({"k": Decimal("-0.0451229895")})
            assert await astore({"v": [1.5, "x"]}) == {"v": [1.5, "x"]}

    asyncio.run(main())
