"""Every PostgreSQL type pgdecor supports, both ways: value → parameter → function → row → equal value.

Each case declares an identity function over the type (`SELECT v`) and a stub annotated with the Python type,
and Hypothesis checks the round trip through the real server.
"""

import datetime as dt
import ipaddress
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.range import Range

from pgdecor import procedure, query, session
from tests.fix_db import Exec
from tests.usercode.typecases import Level, Mood, Point, Shape, StrEnum

SETUP = """
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE EXTENSION IF NOT EXISTS ltree;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE level AS ENUM ('LOW', 'HIGH');
CREATE TYPE point2 AS (x int, y int);
CREATE TYPE shape AS (name text, mood mood, corners point2[], center point2);
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
"""

TEXT = st.text(st.characters(exclude_characters="\x00", codec="utf-8"), max_size=40)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
DATETIMES = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30))
POINTS = st.builds(Point, st.integers(-1000, 1000), st.integers(-1000, 1000))
LABEL = st.from_regex(r"[A-Za-z0-9_]{1,8}", fullmatch=True)


def int_ranges() -> st.SearchStrategy[Range[int]]:
    """Canonical int4 ranges, as the server returns them: [lower, upper) or empty."""
    bounded = st.tuples(st.integers(-1000, 1000), st.integers(1, 100)).map(lambda t: Range(t[0], t[0] + t[1], "[)"))
    return bounded | st.just(Range(empty=True)) | st.integers(-1000, 1000).map(lambda n: Range(n, None, "[)"))


def rectangular(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[list[list[Any]]]:
    """2-D arrays: PostgreSQL wants every row of the same length."""
    return st.integers(1, 3).flatmap(lambda n: st.lists(st.lists(elements, min_size=n, max_size=n), max_size=3))


def _float32(value: float) -> float:
    """real has float32 precision; its text form, read back as a double, differs below that precision."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


#: (PostgreSQL type, annotation, values, normalisation applied to what is sent and what comes back)
CASES: list[tuple[str, Any, st.SearchStrategy[Any], Callable[[Any], Any]]] = [
    ("smallint", int, st.integers(-(2**15), 2**15 - 1), lambda v: v),
    ("integer", int, st.integers(-(2**31), 2**31 - 1), lambda v: v),
    ("bigint", int, st.integers(-(2**63), 2**63 - 1), lambda v: v),
    ("numeric", Decimal, st.decimals(allow_nan=False, allow_infinity=False, places=6), lambda v: v),
    ("real", float, st.floats(width=32, allow_nan=False), _float32),
    ("double precision", float, st.floats(allow_nan=False), lambda v: v),
    ("text", str, TEXT, lambda v: v),
    ("varchar(40)", str, TEXT, lambda v: v),
    ("char(5)", str, st.text("abc xyz", max_size=5), lambda v: v.rstrip(" ")),
    ("boolean", bool, st.booleans(), lambda v: v),
    ("bytea", bytes, st.binary(max_size=64), lambda v: v),
    ("date", dt.date, st.dates(min_value=dt.date(1, 1, 1)), lambda v: v),
    ("time", dt.time, st.times(), lambda v: v),
    ("timetz", dt.time, st.times(timezones=st.just(dt.timezone(dt.timedelta(hours=2)))), lambda v: v),
    ("timestamp", dt.datetime, DATETIMES, lambda v: v),
    ("timestamptz", dt.datetime, DATETIMES.map(lambda d: d.replace(tzinfo=dt.timezone.utc)), lambda v: v),
    ("interval", dt.timedelta, st.timedeltas(dt.timedelta(days=-9999), dt.timedelta(days=9999)), lambda v: v),
    ("uuid", uuid.UUID, st.uuids(), lambda v: v),
    ("json", Any, JSON, lambda v: v),
    ("jsonb", dict[str, Any], st.dictionaries(TEXT, JSON, max_size=4), lambda v: v),
    ("jsonb", list[Point], st.lists(POINTS, max_size=4), lambda v: v),
    ("integer[]", list[int], st.lists(st.integers(-(2**31), 2**31 - 1), max_size=8), lambda v: v),
    ("text[][]", list[list[str]], rectangular(TEXT), lambda v: v if all(v) else []),
    ("integer[]", list[int | None], st.lists(st.none() | st.integers(0, 9), max_size=8), lambda v: v),
    ("mood", Mood, st.sampled_from(Mood), lambda v: v),
    ("level", Level, st.sampled_from(Level), lambda v: v),
    ("mood", Literal["sad", "ok", "happy"], st.sampled_from(["sad", "ok", "happy"]), lambda v: v),
    ("mood[]", list[Mood], st.lists(st.sampled_from(Mood), max_size=5), lambda v: v),
    ("point2", Point, POINTS, lambda v: v),
    ("point2[]", list[Point], st.lists(POINTS, max_size=4), lambda v: v),
    (
        "shape",
        Shape,
        st.builds(Shape, TEXT, st.sampled_from(Mood), st.lists(POINTS, max_size=3), st.none() | POINTS),
        lambda v: v,
    ),
    ("int4range", Range[int], int_ranges(), lambda v: v),
    ("inet", ipaddress.IPv4Address, st.ip_addresses(v=4), lambda v: v),
    ("inet", ipaddress.IPv6Address, st.ip_addresses(v=6), lambda v: v),
    ("cidr", ipaddress.IPv4Network, st.ip_addresses(v=4).map(lambda a: ipaddress.ip_network(f"{a}/32")), lambda v: v),
    ("hstore", dict[str, str | None], st.dictionaries(LABEL, st.none() | TEXT, max_size=4), lambda v: v),
    ("ltree", str, st.lists(LABEL, min_size=1, max_size=4).map(".".join), lambda v: v),
    ("positive", int, st.integers(1, 2**31 - 1), lambda v: v),
]


def _id(case: tuple[str, Any, Any, Any]) -> str:
    return f"{case[0]}-{getattr(case[1], '__name__', None) or case[1]}"


@pytest.fixture
def types_dsn(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(SETUP)
    return pg_dsn


def echo_stub(annotation: Any) -> Any:
    def echo(v):  # type: ignore[no-untyped-def] # noqa: ANN001, ANN202 - annotated below, per case
        raise NotImplementedError

    echo.__annotations__ = {"v": annotation, "return": annotation}
    return procedure("echo")(echo)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_round_trip(types_dsn: str, pg_exec: Exec, case: tuple[str, Any, Any, Any]) -> None:
    """A value sent as an argument of the declared type comes back equal (as the server normalises it)."""
    pgtype, annotation, values, normal = case
    pg_exec(f"CREATE FUNCTION echo(v {pgtype}) RETURNS {pgtype} LANGUAGE sql AS $$ SELECT v $$")
    echo = echo_stub(annotation)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(values)
    def round_trip(value: Any) -> None:
        assert normal(echo(value)) == normal(value)

    with session(types_dsn):
        round_trip()


def test_null_round_trips_for_optional_annotations(types_dsn: str, pg_exec: Exec) -> None:
    """None goes out as NULL and comes back as None for every kind of type."""
    pg_exec("""
        CREATE FUNCTION echo_shape(v shape) RETURNS shape LANGUAGE sql AS $$ SELECT v $$;
        CREATE FUNCTION echo_mood(v mood) RETURNS mood LANGUAGE sql AS $$ SELECT v $$;
        CREATE FUNCTION echo_hstore(v hstore) RETURNS hstore LANGUAGE sql AS $$ SELECT v $$;
    """)

    @procedure
    def echo_shape(v: Shape | None) -> Shape | None: ...

    @procedure
    def echo_mood(v: Mood | None) -> Mood | None: ...

    @procedure
    def echo_hstore(v: dict[str, str | None] | None) -> dict[str, str | None] | None: ...

    with session(types_dsn):
        assert echo_shape(None) is None
        assert echo_mood(None) is None
        assert echo_hstore(None) is None


def test_query_stubs_send_enums_and_json(types_dsn: str) -> None:
    """In @query, an Enum is sent as its label and a dataclass or dict as jsonb."""

    @query("SELECT %(m)s::mood = 'happy' AS happy, (%(p)s::jsonb)->>'x' AS x, %(d)s::jsonb ? 'k' AS k")
    def probe(m: Mood, p: Point, d: dict[str, Any]) -> dict[str, Any]: ...

    with session(types_dsn):
        row = probe(Mood.HAPPY, Point(3, 4), {"k": 1})
    assert list(row.values()) == [True, "3", True]


def test_json_column_maps_onto_a_dataclass_with_typed_fields(types_dsn: str) -> None:
    """A jsonb column becomes the annotated dataclass, its fields converted (dates, decimals, enums)."""

    @dataclass
    class Event:
        at: dt.datetime
        amount: Decimal
        mood: Mood

    @dataclass
    class Row:
        id: int
        event: Event

    @query("SELECT 1 AS id, jsonb_build_object('at', '2024-05-01T10:00:00', 'amount', 12.5, 'mood', 'ok') AS event")
    def event_row() -> Row: ...

    with session(types_dsn):
        assert event_row() == Row(1, Event(dt.datetime(2024, 5, 1, 10), Decimal("12.5"), Mood.OK))


def test_unknown_enum_label_is_a_mapping_error(types_dsn: str) -> None:
    """A label the Python Enum does not have raises MappingError naming both."""
    from pgdecor import MappingError

    class SmallMood(StrEnum):
        SAD = "sad"

    @query("SELECT 'happy'::mood")
    def mood() -> SmallMood: ...

    with pytest.raises(MappingError, match=r"'happy' is not a member of .*SmallMood"), session(types_dsn):
        mood()


@dataclass
class Node:
    """A tree a jsonb document holds: a class that refers to itself."""

    name: str
    children: "list[Node]"  # Node is not defined yet when the class body runs
    weight: Decimal | None = None


@dataclass
class Forest:
    root: Node


def test_json_tree_of_a_self_referring_dataclass(types_dsn: str) -> None:
    """A jsonb document becomes a tree of dataclasses, each level converted by the converter made once for it."""

    @query(
        "SELECT jsonb_build_object('name', 'root', 'weight', 1.5, 'children', jsonb_build_array("
        "jsonb_build_object('name', 'a', 'children', '[]'::jsonb), "
        "jsonb_build_object('name', 'b', 'weight', 2, 'children', jsonb_build_array("
        "jsonb_build_object('name', 'c', 'children', '[]'::jsonb))))) AS root"
    )
    def tree() -> Forest: ...

    expected = Forest(Node("root", [Node("a", []), Node("b", [Node("c", [])], Decimal(2))], Decimal("1.5")))
    with session(types_dsn):
        assert tree() == expected
        assert tree() == expected
