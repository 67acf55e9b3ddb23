"""The ``pgdecor`` command: expected failures are one line on stderr and exit status 2; ``--debug`` shows the
traceback instead."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
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


def system_libpq() -> Path | None:
    """The file of the system's libpq, as the dynamic loader's cache lists it (psycopg's pure-Python implementation
    loads it by its name), if there is one."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    listed = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=False).stdout
    for line in listed.splitlines():
        name, _, path = line.partition(" => ")
        if name.strip().startswith("libpq.so."):
            return Path(path.strip()).resolve()
    return None


@pytest.fixture
def without_libpq() -> list[str]:
    """A command prefix under which psycopg finds no libpq, as on a machine with Python only: psycopg's own builds
    (``psycopg_binary``, ``psycopg_c``) are empty folders and the system's libpq an empty file, in a mount
    namespace of the command's own."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("hiding libpq takes a mount namespace: root and unshare (util-linux)")
    specs = [importlib.util.find_spec(name) for name in ("psycopg_binary", "psycopg_c")]
    folders = [folder for spec in specs if spec is not None for folder in spec.submodule_search_locations or []]
    hidden = [f"mount -t tmpfs tmpfs {shlex.quote(folder)}" for folder in folders]
    libpq = system_libpq()
    if libpq is not None:
        hidden.append(f"mount --bind /dev/null {shlex.quote(str(libpq))}")
    return [unshare, "-m", "/bin/sh", "-c", " && ".join([*hidden, 'exec "$@"']), "sh"]


def test_no_libpq_is_one_line_naming_the_binary_extra(without_libpq: list[str], tmp_path: Path) -> None:
    """Where psycopg finds no libpq, ``import pgdecor`` raises an ImportError that names ``pgdecor[binary]``, and
    the ``pgdecor`` command says it in one line, with exit status 2."""
    env = {k: v for k, v in os.environ.items() if k != "PSYCOPG_IMPL"}  # psycopg looks for every implementation

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [*without_libpq, sys.executable, *argv]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)

    imported = run("-c", "import pgdecor")
    assert imported.returncode == 1
    last = imported.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: pgdecor needs libpq, PostgreSQL's client library, and psycopg found none")
    assert "`pip install 'pgdecor[binary]'`" in last
    command = run("-m", "pgdecor", "demo")
    assert command.returncode == 2
    assert command.stderr.count("\n") == 1, command.stderr
    assert command.stderr.startswith("pgdecor needs libpq")
    assert "`pip install 'pgdecor[binary]'`" in command.stderr
