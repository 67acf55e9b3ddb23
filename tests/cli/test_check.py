"""`pgdecor check` and `pgdecor generate` against schemas made here."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from pgdecor import check
from pgdecor._cli.generate import generate
from pgdecor.testing import assert_stubs_match
from tests.fix_db import Exec

ROOT = Path(__file__).resolve().parents[2]

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE money2 AS (amount numeric, currency text);
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price money2, tags text[], mood mood);
INSERT INTO items VALUES (1, 'pen', ROW(1.5, 'EUR'), '{a,b}', 'ok');
CREATE TABLE audit (what text);
CREATE FUNCTION get_item(id int) RETURNS SETOF items LANGUAGE sql STABLE
    AS $$ SELECT * FROM items i WHERE i.id = get_item.id $$;
COMMENT ON FUNCTION get_item(int) IS 'One item by id.';
CREATE FUNCTION item_names(n int DEFAULT 10) RETURNS SETOF text LANGUAGE sql AS $$ SELECT name FROM items LIMIT n $$;
CREATE FUNCTION split(total numeric, OUT half numeric, OUT rest numeric) LANGUAGE sql
    AS $$ SELECT total / 2, total - total / 2 $$;
CREATE FUNCTION area(int, int) RETURNS int LANGUAGE sql AS $$ SELECT $1 * $2 $$;
CREATE FUNCTION area(float8, float8) RETURNS float8 LANGUAGE sql AS $$ SELECT $1 * $2 $$;
CREATE FUNCTION total(label text, VARIADIC nums int[]) RETURNS text LANGUAGE sql
    AS $$ SELECT label || sum(x) FROM unnest(nums) x $$;
CREATE FUNCTION moods() RETURNS TABLE (m mood, n int) LANGUAGE sql AS $$ SELECT 'ok'::mood, 1 $$;
CREATE PROCEDURE bump(INOUT counter int, step int DEFAULT 1) LANGUAGE plpgsql
    AS $$ BEGIN counter := counter + step; END $$;
CREATE FUNCTION price_of(id int) RETURNS money2 LANGUAGE sql AS $$ SELECT price FROM items i WHERE i.id = price_of.id $$;
CREATE FUNCTION addr(i inet) RETURNS inet LANGUAGE sql AS $$ SELECT i $$;
CREATE FUNCTION record_audit(what text) RETURNS void LANGUAGE sql AS $$ INSERT INTO audit VALUES (what) $$;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
"""


def schema_of(dsn: str) -> str:
    options = conninfo_to_dict(dsn).get("options") or ""
    return str(options).split("search_path=")[1].split(",")[0]


def write_module(directory: Path, source: str) -> str:
    name = f"stubs_{uuid.uuid4().hex[:8]}"
    (directory / f"{name}.py").write_text(source)
    return name


@pytest.fixture
def shop(pg_dsn: str, pg_exec: Exec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    pg_exec(SCHEMA)
    monkeypatch.syspath_prepend(str(tmp_path))
    return pg_dsn


@pytest.mark.slow
def test_generated_module_is_typed_formatted_deterministic_and_checks_clean(shop: str, tmp_path: Path) -> None:
    schema = schema_of(shop)
    text, skipped = generate(shop, schema)
    assert generate(shop, schema)[0] == text  # the same database gives the same bytes
    assert skipped == [f"{schema}.touch(): a trigger function, which triggers call, not called by stubs"]
    assert "    i: ipaddress.IPv4Address | ipaddress.IPv6Address | None,\n) -> ipaddress.IPv4Address" in text
    assert f'@procedure("{schema}.area")\ndef area__int4_int4(' in text
    assert '"""One item by id."""' in text
    assert "def bump(counter: int | None, step: int | None = DEFAULT) -> BumpResult:" in text
    assert "def total(label: str | None, *nums: int) -> str | None:" in text
    name = write_module(tmp_path, text)
    assert check([name], shop) == []
    module_file = str(tmp_path / f"{name}.py")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\nplugins = pgdecor.mypy\n")
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental", module_file],
        capture_output=True, text=True, check=False, env={"MYPYPATH": str(ROOT), "PATH": ""},
    )  # fmt: skip
    assert mypy.returncode == 0, mypy.stdout
    for ruff in (["check", "--isolated"], ["format", "--isolated", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *ruff, module_file],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout


def test_generated_stubs_call_the_functions(shop: str, tmp_path: Path) -> None:
    from pgdecor import session

    module = __import__(write_module(tmp_path, generate(shop, schema_of(shop))[0]))
    with session(shop):
        [item] = module.get_item(1)
        assert (item.name, item.price.currency, item.mood) == ("pen", "EUR", module.Mood.OK)
        assert module.area__int4_int4(2, 3) == 6
        assert module.area__float8_float8(1.5, 2.0) == 3.0
        assert module.bump(1).counter == 2
        assert module.total("sum=", 1, 2) == "sum=3"
        assert module.moods() == [module.MoodsRow(module.Mood.OK, 1)]
        assert module.addr(ipaddress.ip_address("10.0.0.1")) == ipaddress.IPv4Address("10.0.0.1")


BROKEN = """
from dataclasses import dataclass
from enum import Enum
from decimal import Decimal
from pgdecor import DEFAULT, procedure, query


class Mood(Enum):
    SAD = "sad"
    OK = "ok"


@dataclass
class Money2:
    amount: Decimal | None
    currency: str | None


@dataclass
class Item:
    id: int
    name: str
    price: Money2 | None
    tags: list[str] | None
    mood: Mood | None


@dataclass
class ItemWithoutTags:
    id: int
    name: str
    price: Money2 | None
    mood: Mood | None


@dataclass
class ItemWithColour:
    id: int
    name: str
    price: Money2 | None
    tags: list[str] | None
    mood: Mood | None
    colour: str


@dataclass
class Halves:
    half: Decimal | None
    rest: Decimal | None


@dataclass
class StrictMood:
    m: Mood
    n: int | None


@procedure("{schema}.get_itm")
def renamed(id: int) -> Item | None: ...


@procedure("{schema}.get_item")
def retyped(id: str) -> Item | None: ...


@procedure("{schema}.get_item")
def extra_column(id: int) -> ItemWithoutTags | None: ...


@procedure("{schema}.get_item")
def missing_column(id: int) -> ItemWithColour | None: ...


@procedure("{schema}.split")
def set_of_single(total: Decimal) -> list[Halves]: ...


@query("SELECT * FROM {schema}.items WHERE id = %(id)s")
def nullable_name(id: int) -> Item | None: ...


@procedure("{schema}.get_item")
def fine(id: int) -> Item | None: ...


@query("SELEC * FROM {schema}.items")
def bad_sql() -> list[Item]: ...


@query("SELECT name FROM {schema}.items WHERE id = %(id)s")
def param_type(id: str) -> str: ...


@procedure("{schema}.price_of")
def no_default(id: int = DEFAULT) -> Money2 | None: ...


@procedure("{schema}.get_item")
def both_wrong(id: str) -> ItemWithColour | None: ...
"""


def broken_module(shop: str, tmp_path: Path) -> str:
    return write_module(tmp_path, BROKEN.replace("{schema}", schema_of(shop)))


def by_stub(modules: list[str], dsn: str) -> dict[str, str]:
    """Each stub's problem lines, joined."""
    out: dict[str, list[str]] = {}
    for p in check(modules, dsn):
        out.setdefault(p.stub.rsplit(".", 1)[1], []).append(str(p))
    return {stub: "\n".join(lines) for stub, lines in out.items()}


def test_each_mismatch_gets_its_own_line(shop: str, tmp_path: Path) -> None:
    name = broken_module(shop, tmp_path)
    problems = by_stub([name], shop)
    where = f"{tmp_path / name}.py"
    assert all(line.startswith(f"{where}:") for text in problems.values() for line in text.splitlines())
    assert problems["fine"].count("\n") == 0  # only the enum's missing label
    assert "has no function or procedure" in problems["renamed"]
    assert "'id' is str in the stub but integer in the function" in problems["retyped"]
    assert "column 'tags' which stubs_" in problems["extra_column"]
    assert "no column 'colour'" in problems["missing_column"]
    assert "returns one row, not a set" in problems["set_of_single"]
    assert "annotate it `-> T` or `-> T | None`" in problems["set_of_single"]
    assert "cannot prepare the statement" in problems["bad_sql"]
    assert "uses parameter 1 as integer" in problems["param_type"]
    assert "has no default for id" in problems["no_default"]
    # parameters that do not fit, and columns that do not either: both at once
    assert "'id' is str in the stub but integer in the function" in problems["both_wrong"]
    assert "no column 'colour'" in problems["both_wrong"]
    enum_lines = [p for p in problems.values() if "has labels sad, ok, happy" in p]
    assert enum_lines
    assert all("missing: happy" in p for p in enum_lines)


def test_wrong_optional_is_found_where_the_catalog_knows(shop: str, pg_exec: Exec, tmp_path: Path) -> None:
    pg_exec("ALTER TABLE items ALTER COLUMN name DROP NOT NULL")
    source = BROKEN.replace("{schema}", schema_of(shop)).replace(
        "class Mood(Enum):", "class Mood(Enum):\n    HAPPY = 'happy'"
    )
    problems = by_stub([write_module(tmp_path, source)], shop)
    assert "column 'name' may be NULL" in problems["nullable_name"]  # a query over the table
    assert "column 'name' may be NULL" in problems["fine"]  # a function returning the table's rows
    assert "annotate it `str | None`" in problems["fine"]


def test_check_never_writes(shop: str, pg_exec: Exec, tmp_path: Path) -> None:
    schema = schema_of(shop)
    source = f"from pgdecor import procedure\n\n\n@procedure('{schema}.record_audit')\ndef record_audit(what: str) -> None: ...\n"
    assert check([write_module(tmp_path, source)], shop) == []
    assert pg_exec("SELECT count(*) FROM audit") == [(0,)]


def test_a_connection_given_is_left_as_it_was_found(shop: str, tmp_path: Path) -> None:
    """A connection in the middle of its own transaction, with its own row factory: the check finds what it finds
    on a fresh connection (a statement the server refuses spoils nothing after it), and the caller's transaction
    goes on, writable, with its work intact."""
    name = broken_module(shop, tmp_path)
    expected = [str(p) for p in check([name], shop)]
    with psycopg.connect(shop, row_factory=dict_row) as conn:
        conn.execute("CREATE TEMP TABLE work (n int); INSERT INTO work VALUES (1)")
        assert [str(p) for p in check([name], conn)] == expected
        assert conn.info.transaction_status is pq.TransactionStatus.INTRANS
        conn.execute("INSERT INTO work VALUES (2)")
        assert conn.execute("SELECT count(*) AS n FROM work").fetchone() == {"n": 2}
    with psycopg.connect(shop) as idle:
        assert [str(p) for p in check([name], idle)] == expected
        assert idle.info.transaction_status is pq.TransactionStatus.IDLE  # not left idle in a transaction


@pytest.mark.slow
def test_command_line_exit_status_and_json(shop: str, tmp_path: Path) -> None:
    name = broken_module(shop, tmp_path)
    cli = [sys.executable, "-m", "pgdecor", "check", name, "--dsn", shop]
    text = subprocess.run(cli, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert text.returncode == 1
    assert f"{tmp_path / name}.py:" in text.stdout
    assert "problems" in text.stderr
    as_json = subprocess.run([*cli, "--format", "json"], capture_output=True, text=True, cwd=tmp_path, check=False)
    problems: list[dict[str, Any]] = json.loads(as_json.stdout)
    assert {"location", "stub", "database", "stub_says", "fix"} <= set(problems[0])
    good = write_module(tmp_path, generate(shop, schema_of(shop))[0])
    ok = subprocess.run([*cli[:4], good, "--dsn", shop], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert ok.returncode == 0, ok.stdout
    out = tmp_path / "generated.py"
    gen = [sys.executable, "-m", "pgdecor", "generate", "--dsn", shop, "--schema", schema_of(shop), "-o", str(out)]
    done = subprocess.run(gen, capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert "skipped" in done.stderr
    assert out.read_text() == generate(shop, schema_of(shop))[0]
    unknown = subprocess.run([*gen[:7], "nosuch", "-o", str(out)], capture_output=True, text=True, check=False)
    assert unknown.returncode == 2
    assert (
        unknown.stderr
        == "pgdecor generate: the database has no schema 'nosuch'; name one of its schemas with --schema\n"
    )


def test_pytest_helper(shop: str, tmp_path: Path) -> None:
    assert_stubs_match([write_module(tmp_path, generate(shop, schema_of(shop))[0])], shop)
    with pytest.raises(AssertionError, match=r"stubs do not match the database:\n(.|\n)*renamed"):
        assert_stubs_match([broken_module(shop, tmp_path)], shop)


def test_check_covers_the_tests_own_stub_modules(users: str) -> None:
    """The stubs this suite calls match the users schema they run against."""
    with psycopg.connect(users, autocommit=True) as conn:
        assert check(["tests.usercode.userdb"], conn) == []


def test_packages_are_checked_with_their_submodules(shop: str, tmp_path: Path) -> None:
    package = tmp_path / f"pkg_{uuid.uuid4().hex[:8]}"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "db.py").write_text(BROKEN.replace("{schema}", schema_of(shop)))
    problems = by_stub([package.name], shop)
    assert "renamed" in problems
    assert f"{package.name}.sub.db" in problems["renamed"]


JOB_QUEUE = """
CREATE TYPE job_status AS ENUM ('todo', 'doing', 'succeeded', 'failed');
CREATE TYPE job_to_defer AS (queue_name varchar, task_name varchar, priority integer, args jsonb);
CREATE TABLE jobs (
    id bigserial PRIMARY KEY, queue_name varchar NOT NULL, task_name varchar NOT NULL,
    priority integer NOT NULL DEFAULT 0, args jsonb NOT NULL DEFAULT '{}', status job_status NOT NULL DEFAULT 'todo',
    attempts integer NOT NULL DEFAULT 0
);
CREATE TABLE batches (id serial PRIMARY KEY, docs jsonb[]);
CREATE FUNCTION finish_job(job_id integer, end_status job_status, delete_job boolean) RETURNS void LANGUAGE sql
    AS $$ UPDATE jobs SET status = end_status, attempts = attempts + 1 WHERE id = job_id $$;
CREATE FUNCTION retry_job(job_id integer, new_priority integer, new_queue_name varchar) RETURNS void LANGUAGE sql
    AS $$ UPDATE jobs SET status = 'todo', priority = new_priority, queue_name = new_queue_name WHERE id = job_id $$;
CREATE FUNCTION defer_jobs(jobs job_to_defer[]) RETURNS SETOF bigint LANGUAGE sql AS $$
    INSERT INTO jobs (queue_name, task_name, priority, args)
    SELECT u.queue_name, u.task_name, u.priority, u.args FROM unnest(jobs) WITH ORDINALITY AS u ORDER BY u.ordinality
    RETURNING id
$$;
"""

JOB_QUEUE_STUBS = """
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

from pgdecor import query


class Status(Enum):
    TODO = "todo"
    DOING = "doing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass
class Job:
    queue_name: str
    task_name: str
    priority: int
    args: dict[str, Any]


@query("SELECT finish_job(%(job_id)s, %(status)s, %(delete_job)s)")
def finish_job(job_id: int, status: Status, delete_job: bool) -> None: ...


@query("SELECT retry_job(%(job_id)s, %(new_priority)s, %(new_queue_name)s)")
def retry_job(job_id: int, new_priority: int, new_queue_name: str) -> None: ...


@query("SELECT repeat(%(text)s, %(times)s)")
def repeated(text: str, times: int) -> str: ...


@query("SELECT defer_jobs(%(jobs)s::job_to_defer[]) AS id")
def defer_jobs(jobs: list[Job | None]) -> list[int]: ...


@query("SELECT (%(job)s::job_to_defer).task_name")
def task_name(job: Job) -> str: ...


@query("INSERT INTO batches (docs) VALUES (%(docs)s::jsonb[]) RETURNING id")
def keep_docs(docs: list[dict[str, Any]]) -> int: ...


@query("INSERT INTO batches (docs) VALUES (%(docs)s) RETURNING id")
def keep_generated(docs: Annotated[list[Any | None], "jsonb[]"]) -> int: ...
"""


def test_check_prepares_query_parameters_as_calls_send_them(shop: str, pg_exec: Exec, tmp_path: Path) -> None:
    """`int` arguments of integer parameters, casts to an array of composites or to jsonb[]: `check` prepares each
    @query as its calls send it, and finds nothing where every call works (and they do); a true mismatch is still
    found."""
    from pgdecor import session

    pg_exec(JOB_QUEUE)
    name = write_module(tmp_path, JOB_QUEUE_STUBS)
    assert [str(p) for p in check([name], shop)] == []
    module = __import__(name)
    with session(shop):
        job = module.Job("default", "send_mail", 1, {"to": "ann"})
        assert module.defer_jobs([job, job]) == [1, 2]
        module.finish_job(1, module.Status.SUCCEEDED, delete_job=False)
        module.retry_job(2, 5, "later")
        assert module.repeated("ab", 3) == "ababab"
        assert module.task_name(job) == "send_mail"
        assert module.keep_docs([{"a": 1}]) == 1
        assert module.keep_generated([{"a": 1}, None]) == 2
    assert pg_exec("SELECT id, queue_name, priority, status, attempts FROM jobs ORDER BY id") == [
        (1, "default", 1, "succeeded", 1),
        (2, "later", 5, "todo", 0),
    ]
    wrong = write_module(tmp_path, JOB_QUEUE_STUBS.replace("times: int", "times: str"))
    [problem] = check([wrong], shop)
    assert "the SQL uses parameter 2 as integer; the stub says times: str" in str(problem)


def test_a_nullable_composite_attribute_is_advised_as_postgresql_allows(
    shop: str, pg_exec: Exec, tmp_path: Path
) -> None:
    """A composite type's attribute may be NULL, and cannot be declared NOT NULL: `check` advises `| None` or a
    domain declared NOT NULL (and finds nothing for an attribute of such a domain), while a table's column is still
    advised NOT NULL."""
    schema = schema_of(shop)
    pg_exec("""
        CREATE DOMAIN currency AS text NOT NULL;
        CREATE TYPE price AS (amount numeric, currency currency);
        CREATE FUNCTION price_in(id int) RETURNS price LANGUAGE sql AS $$ SELECT ROW(1.5, 'EUR')::price $$;
        ALTER TABLE items ALTER COLUMN name DROP NOT NULL;
    """)
    source = """
from dataclasses import dataclass
from decimal import Decimal
from pgdecor import query, procedure


@dataclass
class Price:
    amount: Decimal
    currency: str


@dataclass
class Named:
    id: int
    name: str


@procedure("{schema}.price_in")
def price_in(id: int) -> Price | None: ...


@query("SELECT id, name FROM {schema}.items")
def names() -> list[Named]: ...
"""
    name = write_module(tmp_path, source.replace("{schema}", schema))
    problems = by_stub([name], shop)
    assert problems["price_in"].split(": ", 2)[2] == (
        "column 'amount' may be NULL (price.amount is an attribute of a composite type); the stub says field "
        f"{name}.Price.amount: decimal.Decimal; annotate it `decimal.Decimal | None`, or make its type a domain "
        "declared NOT NULL"
    )
    assert problems["names"].split(": ", 2)[2] == (
        f"column 'name' may be NULL (items.name is not NOT NULL); the stub says field {name}.Named.name: str; "
        "annotate it `str | None`, or add NOT NULL to the column"
    )


def test_a_dict_of_one_column_is_checked_as_its_document(shop: str, pg_exec: Exec, tmp_path: Path) -> None:
    """`check` reads `dict[str, Any]` as calls do: on one json or jsonb column, its document (nothing to report);
    on one column of another type, a stub that will fail, which it reports with the fix."""
    pg_exec("CREATE FUNCTION doc(id int) RETURNS jsonb LANGUAGE sql AS $$ SELECT jsonb_build_object('id', id) $$")
    source = """
from typing import Any
from pgdecor import procedure, query


@procedure("{schema}.doc")
def doc(id: int) -> dict[str, Any] | None: ...


@query("SELECT {schema}.doc(id) AS doc FROM {schema}.items")
def docs() -> list[dict[str, Any]]: ...


@query("SELECT id FROM {schema}.items")
def ids() -> list[dict[str, Any]]: ...
"""
    problems = by_stub([write_module(tmp_path, source.replace("{schema}", schema_of(shop)))], shop)
    assert list(problems) == ["ids"]
    assert problems["ids"].split(": ", 2)[2] == (
        "the query returned one column, 'id' of type int4, but the stub returns dict[str, Any], which of one column "
        "is its json or jsonb document; the stub says dict[str, Any]; annotate the column's own type; for the row "
        "as a dict, return a TypedDict"
    )
