# Generated from tests/run/test_copy_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.run.test_copy_async`, generated from it: see there."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import ipaddress
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, NamedTuple, TypeVar

import attrs
import msgspec
import psycopg
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.range import Range
from typing_extensions import TypedDict

from bench.failing import cyclic_garbage
from pgdecor import (
    ArgumentError,
    CopyStream,
    Error,
    MappingError,
    NoSessionError,
    SignatureError,
    check,
    copy_in,
    copy_out,
    query,
    session,
)
from pgdecor._wire import guard as _wire_guard
from tests.fix_db import Exec
from tests.usercode.copy_stubs import Person, export_nicknames, export_people, load_nobody, load_people
from tests.usercode.typecases import Level, Mood, Point, Shape

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE EXTENSION IF NOT EXISTS ltree;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE level AS ENUM ('LOW', 'HIGH');
CREATE TYPE point2 AS (x int, y int);
CREATE TYPE shape AS (name text, mood mood, corners point2[], center point2);
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE DOMAIN located AS point2 CHECK ((VALUE).x >= 0);

-- The types psycopg has a binary form for: their COPYs are binary.
CREATE TABLE plain (
    id int PRIMARY KEY, i2 smallint, i4 integer NOT NULL, i8 bigint, num numeric, f4 real, f8 double precision,
    t text, vc varchar(40), ch char(5), b boolean, by bytea, d date, tm time, ttz timetz, ts timestamp,
    tstz timestamptz, iv interval, u uuid, j json, jb jsonb, jpoints jsonb, ints integer[], grid text[][],
    holes integer[], ip inet, net cidr
);
-- And the others: enums, composites (nested, in arrays, under a domain), hstore, ltree, domains, ranges (whose
-- binary form psycopg 3.3.6-3.3.8 writes wrong), and the types psycopg reads as text. Their COPYs are text.
CREATE TABLE rich (
    id int PRIMARY KEY, mood mood, level level, lit mood, moods mood[], pt point2, pts point2[], shape shape,
    h hstore, lt ltree, pos positive, loc located, x xml, tv tsvector, tq tsquery, m money, bits bit(3),
    vb varbit, mac macaddr, geo point, rc regclass, note text, doc jsonb, r int4range
);
CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, age int CHECK (age >= 0));
"""


@dataclass
class Plain:
    id: int
    i2: int | None
    i4: int
    i8: int | None
    num: Decimal | None
    f4: float | None
    f8: float | None
    t: str | None
    vc: str | None
    ch: str | None
    b: bool | None
    by: bytes | None
    d: dt.date | None
    tm: dt.time | None
    ttz: dt.time | None
    ts: dt.datetime | None
    tstz: dt.datetime | None
    iv: dt.timedelta | None
    u: uuid.UUID | None
    j: Any
    jb: dict[str, Any] | None
    jpoints: list[Point] | None
    ints: list[int] | None
    grid: list[list[str]] | None
    holes: list[int | None] | None
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    net: ipaddress.IPv4Network | ipaddress.IPv6Network | None


@dataclass
class Rich:
    id: int
    mood: Mood | None
    level: Level | None
    lit: Literal["sad", "ok", "happy"] | None
    moods: list[Mood] | None
    pt: Point | None
    pts: list[Point] | None
    shape: Shape | None
    h: dict[str, str | None] | None
    lt: str | None
    pos: int | None
    loc: Point | None
    x: str | None
    tv: str | None
    tq: str | None
    m: str | None
    bits: str | None
    vb: str | None
    mac: str | None
    geo: str | None
    rc: str | None
    note: str | None
    doc: dict[str, Any] | None
    r: Range[int] | None


T = TypeVar("T")


def nulls(cls: type[T], **given: Any) -> T:
    """A row of *cls* whose fields are None, but those *given*."""
    return cls(**({f.name: None for f in dataclasses.fields(cls)} | given))  # type: ignore[arg-type]


TZ = dt.timezone(dt.timedelta(hours=2))
NASTY = "tab\there\nnew line\\back slash \\N \r é \U0001f600 \"quoted\" 'single' {braces} (parens),"

PLAIN = [
    Plain(
        1, -(2**15), -(2**31), -(2**63), Decimal("-12345678901234567890.000001"), -1.5, 1e-300, NASTY, "varying",
        "abcde", True, b"\x00\x01\\\xff", dt.date(1, 1, 1), dt.time(0, 0), dt.time(23, 59, 59, 999999, tzinfo=TZ),
        dt.datetime(1999, 12, 31, 23, 59, 59, 1), dt.datetime(2024, 2, 29, 12, tzinfo=dt.timezone.utc),
        dt.timedelta(days=-3, seconds=5), uuid.UUID(int=0), {"nested": [1, "two", None, {"three": 3.5}]},
        {"k": NASTY, "n": None, "list": [True, False]}, [Point(1, 2), Point(-3, 4)], [1, -2, 2**31 - 1], [["a", "b"], [NASTY, ""]],
        [None, 1, None], ipaddress.IPv4Address("192.168.0.1"),
        ipaddress.IPv6Network("2001:db8::/32"),
    ),
    Plain(
        2, 2**15 - 1, 2**31 - 1, 2**63 - 1, Decimal("0.1"), 3.25, float("inf"), "", "", "vwxyz", False, b"",
        dt.date(9999, 12, 31), dt.time(12, 30, 1), dt.time(1, 2, tzinfo=dt.timezone.utc),
        dt.datetime(1970, 1, 1), dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc), dt.timedelta(0),
        uuid.UUID("12345678-1234-5678-1234-567812345678"), [1, 2, 3], {}, [], [], [], [],
        ipaddress.IPv6Address("::1"), ipaddress.IPv4Network("10.0.0.0/8"),
    ),
    nulls(Plain, id=3, i4=0),
]  # fmt: skip

RICH = [
    Rich(
        1, Mood.HAPPY, Level.LOW, "ok", [Mood.SAD, Mood.OK], Point(1, -2), [Point(0, 0), Point(5, 6)],
        Shape(NASTY, Mood.SAD, [Point(1, 1)], None), {"a": "1", "b": None, "c\td": NASTY}, "top.science.astronomy", 7,
        Point(3, 4), "<a>1</a>", "'cat' 'fat':2", "'fat' & 'rat'", "$1.50", "101", "1101", "08:00:2b:01:02:03",
        "(1,2)", "pg_class", NASTY, {"text": NASTY, "deep": {"list": [1, {"x": None}]}}, Range(1, 10, "[)"),
    ),
    Rich(2, Mood.SAD, Level.HIGH, "happy", [], Point(0, 0), [], Shape("", Mood.OK, [], Point(9, 9)), {}, "a", 1,
         Point(0, 0), "<b/>", "'x'", "'x'", "$0.00", "000", "", "00:00:00:00:00:00", "(0,0)", "pg_type", "", {}, Range(empty=True)),
    nulls(Rich, id=3),
]  # fmt: skip


@pytest.fixture
def dsn(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(SCHEMA)
    return pg_dsn


@copy_in("plain")
def load_plain(rows: Iterable[Plain]) -> int: ...


@copy_out("plain")
def export_plain() -> Iterator[Plain]: ...


@copy_in("rich")
def load_rich(rows: Iterable[Rich]) -> int: ...


@copy_out("rich")
def export_rich() -> Iterator[Rich]: ...


@query("SELECT * FROM plain ORDER BY id")
def plain_rows() -> list[Plain]: ...


@query("SELECT * FROM rich ORDER BY id")
def rich_rows() -> list[Rich]: ...


def test_every_type_round_trips_through_binary_and_text_copies(dsn: str) -> None:
    """Every type of the Types page goes in and comes back out equal, in a binary COPY where psycopg has a binary
    form for each column's type and in a text one otherwise; what went in is what a query reads. The rows come
    from a generator (an async one, into an async stub) or an iterator, and stream back out of either kind of
    stub."""
    read: list[int] = []

    def plain() -> Iterator[Plain]:
        for row in PLAIN:
            read.append(row.id)
            yield row

    with session(dsn):
        assert load_plain(plain()) == len(PLAIN)
        assert read == [1, 2, 3]
        assert load_rich(iter(RICH)) == len(RICH)
        exported_plain = list(export_plain())
        exported_rich = list(export_rich())
        assert sorted(exported_plain, key=lambda r: r.id) == PLAIN
        assert sorted(exported_rich, key=lambda r: r.id) == RICH
        assert plain_rows() == PLAIN
        assert rich_rows() == RICH
    assert load_plain.sql == (
        'COPY "plain" ("id", "i2", "i4", "i8", "num", "f4", "f8", "t", "vc", "ch", "b", "by", "d", "tm", "ttz", "ts", '
        '"tstz", "iv", "u", "j", "jb", "jpoints", "ints", "grid", "holes", "ip", "net") FROM STDIN (FORMAT BINARY)'
    )
    assert export_plain.sql is not None
    assert export_plain.sql.startswith('COPY "plain" ("id", "i2", ')
    assert export_plain.sql.endswith(") TO STDOUT (FORMAT BINARY)")
    assert load_rich.sql is not None
    assert load_rich.sql.endswith("FROM STDIN (FORMAT TEXT)")
    assert export_rich.sql is not None
    assert export_rich.sql.endswith("TO STDOUT (FORMAT TEXT)")


def test_large_copies_stream_in_batches_both_ways(dsn: str) -> None:
    """Rows go in from a generator and come out of a stream a batch at a time, all of them, in order, whatever
    their number against the batch size."""

    def people(n: int) -> Iterator[Person]:
        for i in range(n):
            yield Person(i, f"person {i}", None if i % 7 == 0 else i % 90)

    for n in (0, 1, 999, 1000, 1001, 2500):
        with session(dsn):
            assert load_people(people(n)) == n
            assert list(export_people()) == list(people(n))
            _truncate()


@query("TRUNCATE people")
def _truncate() -> None: ...


@dataclass
class Text:
    id: int
    t: str | None
    b: bytes | None
    doc: dict[str, Any] | None


@dataclass
class MoodyText(Text):
    moods: list[Mood] | None


TEXT = st.text(st.characters(exclude_characters="\x00", codec="utf-8"), max_size=30)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)


@copy_in("texts")
def load_texts(rows: Iterable[Text]) -> int: ...


@copy_out("texts")
def export_texts() -> Iterator[Text]: ...


@copy_in("moody_texts")
def load_moody(rows: Iterable[MoodyText]) -> int: ...


@copy_out("moody_texts")
def export_moody() -> Iterator[MoodyText]: ...


@query("TRUNCATE texts, moody_texts")
def _truncate_texts() -> None: ...


@pytest.mark.parametrize("psycopg_rows", [True, False], ids=["psycopg's row functions", "pgdecor's own"])
def test_any_text_bytes_and_json_round_trip_through_binary_and_text_copies(
    dsn: str, pg_exec: Exec, monkeypatch: pytest.MonkeyPatch, psycopg_rows: bool
) -> None:
    """Strings of any characters (tabs, newlines, backslashes, \\N), bytes and JSON documents come back equal from
    a binary COPY and from a text one (a column of an array of enums makes it text), through psycopg's row functions and
    through what pgdecor does where they are not used."""
    pg_exec(
        "CREATE TABLE texts (id int, t text, b bytea, doc jsonb);"
        "CREATE TABLE moody_texts (id int, t text, b bytea, doc jsonb, moods mood[])"
    )
    if not psycopg_rows:
        monkeypatch.setattr(_wire_guard.switch, "on", False)
    values = st.tuples(st.none() | TEXT, st.none() | st.binary(max_size=20), st.none() | st.dictionaries(TEXT, JSON))

    def round_trip(conn: psycopg.Connection[Any], rows: list[tuple[Any, Any, Any]], moods: list[Mood]) -> None:
        plain = [Text(i, *row) for i, row in enumerate(rows)]
        moody = [MoodyText(i, *row, moods) for i, row in enumerate(rows)]
        with session(conn):
            assert load_texts(plain) == len(rows)
            assert load_moody(moody) == len(rows)
            assert list(export_texts()) == plain
            assert list(export_moody()) == moody
            _truncate_texts()

    with psycopg.Connection.connect(dsn) as conn:

        @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.lists(values, max_size=4), st.lists(st.sampled_from(Mood), max_size=3))
        def examples(rows: list[tuple[Any, Any, Any]], moods: list[Mood]) -> None:
            round_trip(conn, rows, moods)

        examples()
    assert load_texts.sql is not None
    assert load_texts.sql.endswith("(FORMAT BINARY)")
    assert load_moody.sql is not None
    assert load_moody.sql.endswith("(FORMAT TEXT)")
    assert export_moody.sql is not None
    assert export_moody.sql.endswith("(FORMAT TEXT)")


# -- rows of every model library -------------------------------------------------------------------------------


@dataclass
class PersonDataclass:
    id: int
    name: str
    age: int | None = None


class PersonTuple(NamedTuple):
    id: int
    name: str
    age: int | None


class PersonDict(TypedDict):
    id: int
    name: str
    age: int | None


class PersonModel(pydantic.BaseModel):
    id: int
    name: str = pydantic.Field(alias="fullName")
    age: int | None = pydantic.Field(default=None, ge=0)


@attrs.frozen
class PersonAttrs:
    id: int
    _name: str  # the column `name`
    age: int | None = None


class PersonStruct(msgspec.Struct):
    id: int
    name: str
    age: int | None = None


def _make(cls: Any, i: int, name: str, age: int | None) -> Any:
    if cls is PersonDict:
        return PersonDict(id=i, name=name, age=age)
    if cls is PersonModel:
        return PersonModel(id=i, fullName=name, age=age)
    if cls is PersonAttrs:
        return PersonAttrs(i, name, age)
    return cls(i, name, age)


@pytest.mark.parametrize(
    "cls", [PersonDataclass, PersonTuple, PersonDict, PersonModel, PersonAttrs, PersonStruct], ids=lambda c: c.__name__
)
def test_rows_of_every_model_library_round_trip(dsn: str, cls: type) -> None:
    """Dataclasses, NamedTuples, TypedDicts, pydantic models (aliases aside), attrs classes (a private attribute
    filled from its column) and msgspec Structs are copied in and back out, field by column name, from a stream
    that starts at its first read or at the call."""

    def load(rows):  # type: ignore[no-untyped-def] # noqa: ANN001, ANN202 - annotated below, per class
        raise NotImplementedError

    def export():  # type: ignore[no-untyped-def] # noqa: ANN202 - annotated below, per class
        raise NotImplementedError

    def export_started():  # type: ignore[no-untyped-def] # noqa: ANN202 - annotated below, per class
        raise NotImplementedError

    load.__annotations__ = {"rows": Iterable[cls], "return": int}  # type: ignore[valid-type]
    export.__annotations__ = {"return": Iterator[cls]}  # type: ignore[valid-type]
    export_started.__annotations__ = {"return": Iterator[cls]}  # type: ignore[valid-type]
    copy: Any = copy_in("people")(load), copy_out("people")(export), copy_out("people")(export_started)
    load_rows, export_rows, export_started_rows = copy

    rows = [_make(cls, i, f"name {i}", i if i % 2 else None) for i in range(1, 6)]
    with session(dsn):
        assert load_rows(rows) == 5
        assert list(export_rows()) == rows
        assert list(export_started_rows()) == rows


# -- bad rows ------------------------------------------------------------------------------------------------------


def _people(n: int, bad: int, **fields: Any) -> Iterator[Person]:
    """*n* people, the one at index *bad* with *fields* changed."""
    for i in range(n):
        person = Person(i, f"person {i}", 30)
        if i == bad:
            for name, value in fields.items():
                setattr(person, name, value)
        yield person


@query("SELECT count(*) FROM people")
def count_people() -> int: ...


BAD_ROWS = [
    (
        {"id": "seven"},
        ArgumentError,
        (
            r"load_people\(\): rows\[1500\]\.id is str 'seven', which column 'id' \(integer\) does not take \(the "
            r"field is annotated int\); the COPY into people stopped, and stored nothing"
        ),
    ),
    (
        {"id": 2**31},
        ArgumentError,
        (
            r"load_people\(\): rows\[1500\]\.id is 2147483648, out of the range of int4 column 'id'; the COPY into "
            r"people stopped, and stored nothing"
        ),
    ),
    ({"name": None}, psycopg.errors.NotNullViolation, r'null value in column "name"'),
    ({"id": None}, psycopg.errors.NotNullViolation, r'null value in column "id"'),
    ({"age": -1}, psycopg.errors.CheckViolation, r'violates check constraint "people_age_check"'),
]
BAD_ROW_IDS = ["type", "range", "null text", "null int", "check"]


def _server_note(exc: BaseException, stub: str) -> str:
    return "\n".join(n for n in getattr(exc, "__notes__", ()) if n.startswith(stub))


@pytest.mark.parametrize(("fields", "error", "message"), BAD_ROWS, ids=BAD_ROW_IDS)
def test_a_bad_row_is_named_and_nothing_of_the_copy_is_stored(
    dsn: str, fields: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A value a column cannot take raises ArgumentError naming the row (its index in the rows, past the first
    batches sent) and the column; a row the server refuses raises its error, noted with the row and the column
    it names; either way the session rolls back, and not one row of the COPY is stored."""
    with pytest.raises(error, match=message) as caught, session(dsn):
        load_people(_people(2000, 1500, **fields))
    if error is not ArgumentError:
        column = next(iter(fields))
        expected = "tests.usercode.copy_stubs.load_people: the server refused rows[1500]" + (
            f", column {column!r}" if error is psycopg.errors.NotNullViolation else ""
        )
        assert _server_note(caught.value, "tests.usercode.copy_stubs.load_people").startswith(expected)
        assert "(line 1501 of the COPY into people); the COPY stored nothing" in _server_note(
            caught.value, "tests.usercode.copy_stubs.load_people"
        )
    with session(dsn):
        assert count_people() == 0


@pytest.mark.parametrize(("fields", "error", "message"), BAD_ROWS, ids=BAD_ROW_IDS)
def test_a_bad_row_leaves_the_sessions_connection_to_serve_the_next(
    dsn: str, fields: dict[str, Any], error: type[Exception], message: str
) -> None:
    """The same on a connection of the user's: after the bad row, the connection serves the next session, which
    finds nothing of the COPY stored."""
    with psycopg.Connection.connect(dsn) as conn:
        with pytest.raises(error, match=message), session(conn):
            load_people(_people(2000, 1500, **fields))
        with session(conn):
            assert count_people() == 0


def test_a_row_that_is_not_of_the_row_type_is_named(dsn: str) -> None:
    """An object that lacks the row type's fields raises ArgumentError naming its index."""
    rows: list[Any] = [Person(1, "ann", 3), None]
    refused = r"rows\[1\] is NoneType None, which has no field of one of the columns"
    with pytest.raises(ArgumentError, match=refused), session(dsn):
        load_people(rows)


def test_rows_that_are_not_iterable_are_refused_before_anything_is_sent(dsn: str) -> None:
    """A COPY's rows must be iterable: anything else raises ArgumentError naming the parameter."""
    with session(dsn), pytest.raises(ArgumentError, match=r"argument 'rows' must be an iterable of Person, got int"):
        load_people(5)  # type: ignore[arg-type]


# -- in the session's transaction ----------------------------------------------------------------------------------


def test_a_copy_commits_with_its_session_and_rolls_back_with_its_later_error(dsn: str) -> None:
    """A COPY's rows are stored when its session commits: an error later in the session rolls them back with it."""
    with pytest.raises(ZeroDivisionError), session(dsn):
        assert load_people(_people(10, -1)) == 10
        assert count_people() == 10  # seen inside the session
        _ = 1 / 0
    with session(dsn):
        assert count_people() == 0
        load_people(_people(10, -1))
    with session(dsn):
        assert count_people() == 10


#: People the server takes a minute to send past the 1,499th.
SLOW_VIEW = (
    "CREATE VIEW slow AS SELECT i AS id, 'person ' || i || CASE WHEN i = 1500 THEN pg_sleep(60)::text ELSE '' END"
    " AS name, NULL::int AS age FROM generate_series(1, 3000) AS i"
)


@copy_out("people")
def stream_people() -> CopyStream[Person]: ...


def test_failing_copies_leave_nothing_for_the_cyclic_collector(dsn: str, figures: Callable[[str], None]) -> None:
    """COPYs that fail every way (a value refused, a row the server refuses, a stream left open in a session that
    fails, one closed early) leave no pgdecor or psycopg object that only the cyclic collector would free."""
    rows_refused = [Person(1, "ann", 3), Person(2**31, "bob", 4)]
    rows_failing = [Person(1, "ann", 3), Person(1, "bob", 4)]
    with session(dsn):
        load_people(_people(2500, -1))
    gc.collect()
    for rows in (rows_refused, rows_failing):
        with contextlib.suppress(Error, psycopg.Error), session(dsn):
            load_people(rows)
    with contextlib.suppress(ZeroDivisionError), session(dsn):
        next(export_people())
        _ = 1 / 0
    with session(dsn), stream_people() as stream:
        next(stream)
    left = cyclic_garbage()
    figures(f"{left} cyclic pgdecor/psycopg objects after 4 failing or closed COPYs ({__name__})")
    assert left == 0


# -- streams: closed early, and what cannot share their connection --------------------------------------------------


@pytest.mark.timing
def test_a_stream_closed_early_leaves_the_session_to_go_on_and_commit(dsn: str, pg_exec: Exec) -> None:
    """A COPY out read in part and closed (or left to its session) is stopped on the server, whatever it had left
    to send (a view that would take a minute more): the session's next calls run, and it commits."""
    pg_exec(SLOW_VIEW)

    @copy_out("slow")
    def export_slow() -> CopyStream[Person]: ...

    with session(dsn):
        load_people(_people(2500, -1))
    with session(dsn):
        stream = stream_people()
        assert [next(stream).id for _ in range(3)] == [0, 1, 2]
        stream.close()
        assert count_people() == 2500
        started = time.monotonic()
        with export_slow() as slow:
            assert next(slow).id == 1
        assert time.monotonic() - started < 30  # not the minute the server would take to send the rest
        load_people(_people(1, 0, id=5000))
        left = export_people()
        next(left)
    with session(dsn):
        assert count_people() == 2501
    started = time.monotonic()
    with session(dsn):
        next(export_slow())
    assert time.monotonic() - started < 30


def test_a_call_while_a_stream_is_open_fails_rather_than_waits(dsn: str) -> None:
    """Until a COPY out is read to its end, its connection is busy: another call of the session fails at once, a
    second COPY says why, and the session still ends (rolled back) with its connection usable."""
    with session(dsn):
        load_people(_people(2500, -1))
    with pytest.raises(psycopg.OperationalError, match="another command is already in progress"), session(dsn):
        for person in export_people():
            if person.id == 1200:
                count_people()
    busy = r"load_people\(\): the session's connection is busy with the stream of tests.usercode.copy_stubs.export_people, still open"
    with pytest.raises(Error, match=busy), session(dsn):
        stream = export_people()
        next(stream)
        load_people([])
    with session(dsn):
        assert count_people() == 2500


@copy_out("people")
def export_people_started() -> Iterator[Person]: ...


def test_a_stub_called_for_the_rows_raises_instead_of_waiting_for_ever(dsn: str) -> None:
    """The rows are read while the COPY holds the connection: a stub of the session called to make them raises
    NoSessionError, noted with why, instead of waiting for the connection; rows that are the session's own stream
    are refused before anything is sent."""

    def rows() -> Iterator[Person]:
        yield Person(count_people(), "ann", None)

    with pytest.raises(NoSessionError, match="outside any session") as caught, session(dsn):
        load_people(rows())
    notes = "\n".join(getattr(caught.value, "__notes__", ()))
    assert "its rows are read while the COPY holds the session's connection" in notes
    with pytest.raises(ArgumentError, match="its rows are a stream of the same session"), session(dsn):
        load_people(export_people_started())


def test_rows_that_are_a_stream_of_the_session_not_yet_started_are_refused_before_anything_is_sent(
    dsn: str,
) -> None:
    """A stream of the same session given as a COPY's rows is refused before anything is sent, also when it has
    not started yet (a `def` stub's `Iterator` starts at its first read)."""
    with pytest.raises(ArgumentError, match="its rows are a stream of the same session"), session(dsn):
        load_people(export_people())


# -- the stubs themselves, and check ----------------------------------------------------------------------------------


def test_check_reports_a_wrong_column_type_and_a_missing_column(dsn: str) -> None:
    """`pgdecor check` compares a COPY stub's row type with its table: a field of another type than its column, a
    field with no column, a nullable column for a field that is not Optional, a NOT NULL column with no default the
    rows leave out, and a table that does not exist; the stubs that agree are not reported."""
    problems = {p.stub.rsplit(".", 1)[1]: str(p) for p in check(["tests.usercode.copy_stubs"], dsn)}
    assert sorted(problems) == ["export_nicknames", "export_strict_ages", "load_ids", "load_nobody", "load_wrong_age"]
    assert (
        "column 'age' is integer; the stub says field tests.usercode.copy_stubs.WrongAge.age: str"
        in problems["load_wrong_age"]
    )
    assert "table people has no column 'nickname'; the stub says field" in problems["export_nicknames"]
    assert "add the column, or give the field a default" in problems["export_nicknames"]
    assert "column 'age' may be NULL (people.age is not NOT NULL)" in problems["export_strict_ages"]
    assert "column 'name' of people is NOT NULL, with no default" in problems["load_ids"]
    assert "there is no table nobody; the stub says @copy_in('nobody')" in problems["load_nobody"]


def test_a_table_that_does_not_fit_the_row_type_is_a_mapping_error(dsn: str) -> None:
    """At the first COPY, a field with no column, or no table at all, raises MappingError naming them."""
    with pytest.raises(MappingError, match=r"table people has no column 'nickname' for field"), session(dsn):
        list(export_nicknames())
    with pytest.raises(MappingError, match=r"there is no table nobody"), session(dsn):
        load_nobody([])


def test_stubs_that_cannot_copy_are_refused_when_decorated() -> None:
    """A COPY stub's signature says which way its rows go: anything else raises SignatureError at import."""
    with pytest.raises(SignatureError, match="a @copy_in stub takes one parameter"):

        @copy_in("people")
        def two(rows: Iterable[Person], more: int) -> int: ...

    with pytest.raises(SignatureError, match=r"annotate it `-> Iterator\[T\]`"):

        @copy_out("people")
        def listed() -> list[Person]: ...

    with pytest.raises(SignatureError, match="the rows of a COPY stub are of a row type"):

        @copy_in("people")
        def scalars(rows: Iterable[int]) -> int: ...

    with pytest.raises(SignatureError, match=r"'a\.b\.c' is not a table name"):
        copy_in("a.b.c")
