"""`pgdecor check` and `generate` without a database of the user's: schema files and migrations applied to a
throwaway server, and ``--watch``."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgdecor.__main__ import main
from tests.cli.test_check import BROKEN

# Each test builds its database from files in a throwaway server of its own.
pytestmark = pytest.mark.slow

SHOP = Path(__file__).parent / "test_check.py"


def shop_schema(schema: str) -> str:
    """test_check's schema, in a schema of its own, as a file of DDL would hold it."""
    from tests.cli.test_check import SCHEMA

    return f"CREATE SCHEMA {schema};\nSET search_path = {schema};\n{SCHEMA}"


@contextlib.contextmanager
def database_from(server: str, ddl: str) -> Iterator[str]:
    """A database on *server* holding *ddl*, applied as a user would with ``psql -f``."""
    name = f"offline_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        dsn = make_conninfo(server, dbname=name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(ddl.encode())
        yield dsn
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that is the current directory and on the path, as a project's checkout."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_with_a_schema_file_reports_what_check_with_a_dsn_does(
    project: Path, pg_server_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same stubs, the same DDL: applied to a live database and checked with ``--dsn``, or given as
    ``--schema-file``: the same problems, line for line."""
    schema = "shop"
    ddl = shop_schema(schema)
    (project / "schema.sql").write_text(ddl)
    (project / "shop_stubs.py").write_text(BROKEN.replace("{schema}", schema))
    with database_from(pg_server_dsn, ddl) as live:
        assert main(["check", "shop_stubs", "--dsn", live, "--format", "json"]) == 1
    expected = json.loads(capsys.readouterr().out)
    assert main(["check", "shop_stubs", "--schema-file", "schema.sql", "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert found == expected
    assert len(found) >= 12
    assert {p["stub"].rsplit(".", 1)[1] for p in found} >= {"renamed", "retyped", "no_default", "bad_sql"}


MIGRATIONS = {
    "1_items.sql": "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);",
    "2_get_item.sql": (
        "CREATE FUNCTION get_item(id int) RETURNS SETOF items LANGUAGE sql STABLE\n"
        "    AS $$ SELECT * FROM items i WHERE i.id = get_item.id $$;"
    ),
    # After 2_ (numbers compare as numbers): it needs get_item, and changes what it returns.
    "10_price.sql": (
        "ALTER TABLE items ADD COLUMN price numeric;\n"
        "-- a literal % in a file is fine: files are run as they are\n"
        "COMMENT ON TABLE items IS '100% of the items';"
    ),
}

ITEM_STUBS = """
from dataclasses import dataclass
from decimal import Decimal

from pgdecor import procedure


@dataclass
class Item:
    id: int
    name: str
    price: Decimal | None


@procedure
def get_item(id: int) -> Item | None: ...
"""


def test_migrations_are_applied_in_the_order_of_their_numbers(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    migrations = project / "migrations"
    migrations.mkdir()
    for name, text in MIGRATIONS.items():
        (migrations / name).write_text(text)
    (project / "item_stubs.py").write_text(ITEM_STUBS)
    assert main(["check", "item_stubs", "--migrations", "migrations"]) == 0
    assert capsys.readouterr().err == "0 problems\n"


def test_a_schema_file_that_fails_names_the_file_and_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "item_stubs.py").write_text(ITEM_STUBS)
    (project / "schema.sql").write_text("CREATE TABLE items (id int);\n\nCREATE FUNCTION broken( RETURNS int;\n")
    assert main(["check", "item_stubs", "--schema-file", "schema.sql"]) == 2
    err = capsys.readouterr().err
    assert err.startswith('pgdecor check: schema.sql:3: syntax error at or near ";" (a fresh server ran')
    assert err.count("\n") == 1
    assert main(["check", "item_stubs", "--schema-file", "nowhere.sql"]) == 2
    assert capsys.readouterr().err == "pgdecor check: --schema-file nowhere.sql: no such file\n"


def test_generate_from_a_schema_file_writes_what_generate_from_the_database_does(
    project: Path, pg_server_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ddl = shop_schema("shop")
    (project / "schema.sql").write_text(ddl)
    with database_from(pg_server_dsn, ddl) as live:
        assert main(["generate", "--schema", "shop", "--dsn", live, "-o", "live.py"]) == 0
    assert main(["generate", "--schema", "shop", "--schema-file", "schema.sql", "-o", "offline.py"]) == 0
    assert (project / "offline.py").read_text() == (project / "live.py").read_text()
    assert "def get_item(" in (project / "offline.py").read_text()
    with pytest.raises(SystemExit, match="2"):
        main(["generate", "--schema", "shop", "--schema-file", "schema.sql", "--dsn", "x"])
    assert "--dsn and --schema-file/--migrations: give one database" in capsys.readouterr().err


class Watched:
    """A ``pgdecor ... --watch`` process, its output read line by line as it comes."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), *sys.path])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pgdecor", *argv],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def run(self) -> list[str]:
        """The lines of one run, up to the one that says it is watching again."""
        out = []
        while True:
            line = self.lines.get(timeout=120)  # a hang fails the test rather than blocking the suite
            out.append(line)
            if "watching" in line:
                return out

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        status = self.proc.wait(timeout=60)
        self._reader.join(timeout=60)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return status


def test_check_watch_runs_again_when_a_stub_or_the_schema_changes(project: Path) -> None:
    """One report per change: of the stubs' module (fixed: no problems), then of the schema (a column renamed: a
    problem again); Ctrl-C ends it with status 0."""
    schema = project / "schema.sql"
    schema.write_text("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);\n" + MIGRATIONS["2_get_item.sql"])
    stubs = project / "item_stubs.py"
    stubs.write_text(ITEM_STUBS)  # `price` has no column
    watched = Watched(["check", "item_stubs", "--schema-file", "schema.sql", "--watch"], project)
    try:
        first = "".join(watched.run())
        assert "no column 'price'" in first
        assert "exit status 1; watching 2 files" in first
        stubs.write_text(ITEM_STUBS.replace("    price: Decimal | None\n", ""))
        second = "".join(watched.run())
        assert "0 problems" in second
        assert "pgdecor: done; watching 2 files" in second
        schema.write_text(schema.read_text().replace("name text", "title text"))
        third = "".join(watched.run())
        assert "column 'title' which item_stubs.Item has no field for" in third
    finally:
        status = watched.stop()
    assert status == 0


def test_generate_watch_writes_the_module_again_when_the_schema_changes(project: Path) -> None:
    schema = project / "schema.sql"
    schema.write_text("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);\n" + MIGRATIONS["2_get_item.sql"])
    out = project / "db.py"
    watched = Watched(
        ["generate", "--schema", "public", "--schema-file", "schema.sql", "-o", "db.py", "--watch"], project
    )
    try:
        assert "pgdecor: done; watching 1 file " in "".join(watched.run())
        assert "def get_item(" in out.read_text()
        assert "item_count" not in out.read_text()
        with schema.open("a") as f:
            f.write("\nCREATE FUNCTION item_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM items $$;\n")
        watched.run()
        assert "def item_count() -> int" in out.read_text()
    finally:
        assert watched.stop() == 0
