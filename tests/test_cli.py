"""The ``pgdecor`` command: expected failures are one line on stderr and exit status 2; ``--debug`` shows the
traceback instead."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgdecor.__main__ import main

DEAD = "host=/nonexistent port=1 connect_timeout=1"


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "cli_broken.py").write_text('raise RuntimeError("boom at import")\n')
    (tmp_path / "cli_plain.py").write_text("x = 1\n")
    (tmp_path / "cli_stubs.py").write_text('from pgdecor import query\n\n\n@query("SELECT 1")\ndef one() -> int: ...\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.usefixtures("modules")
def test_an_unreachable_database_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "cli_stubs", "--dsn", DEAD]) == 2
    assert one_line(capsys).startswith("pgdecor check: connection is bad: connection to server on socket")


@pytest.mark.usefixtures("modules")
def test_a_module_that_does_not_import_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "cli_broken", "--dsn", DEAD]) == 2
    assert one_line(capsys) == (
        "pgdecor check: cli_broken does not import (RuntimeError: boom at import); "
        "`python -c 'import cli_broken'` shows why\n"
    )


@pytest.mark.usefixtures("modules")
def test_no_stubs_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "cli_plain", "--dsn", DEAD]) == 2
    assert "no stubs found in cli_plain" in one_line(capsys)


def test_a_dsn_libpq_cannot_read_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--schema", "app", "--dsn", "host=localhost dbnme=app"]) == 2
    assert one_line(capsys).startswith(
        "pgdecor generate: --dsn: 'host=*** dbnme=***' is not a connection string libpq can read (invalid connection "
        'option "dbnme")'
    )


def test_an_unknown_schema_is_one_line(pg_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--schema", "no_such_schema", "--dsn", pg_dsn]) == 2
    assert "no_such_schema" in one_line(capsys)


@pytest.mark.usefixtures("modules")
def test_debug_shows_the_error_itself() -> None:
    with pytest.raises(psycopg.OperationalError):
        main(["--debug", "check", "cli_stubs", "--dsn", DEAD])
