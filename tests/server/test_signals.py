"""SIGTERM and SIGHUP end the throwaway servers of the process they stop, and remove their directories, as Ctrl-C
does: `pgdecor check --watch` and a users' suite under pytest, stopped from outside."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.cli.test_offline import Watched

pytestmark = pytest.mark.slow

ITEMS_SCHEMA = "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);\n"
ITEMS_STUBS = 'from pgdecor import query\n\n\n@query("SELECT name FROM items WHERE id = %(id)s")\ndef item_name(id: int) -> str | None: ...\n'

#: A users' test that waits in a statement on the fixtures' throwaway server until it is stopped.
WAITING_SUITE = """
def test_waits_in_a_statement(pg_transaction):
    pg_transaction.execute("SELECT pg_catalog.pg_sleep(120)")
"""


@pytest.fixture
def server_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The ``TMPDIR`` of the process under test, of this test alone (the only place its throwaway servers are
    looked for), which a server run as another user can enter; servers found there at the end are stopped."""
    folder = Path(tempfile.mkdtemp(prefix="signals-"))
    folder.chmod(0o755)
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.delenv("PGDECOR_TEST_DSN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    yield folder
    left = list(folder.glob("pgdecor-*/data/postmaster.pid"))  # by a process that did not stop them
    for pid_file in left:
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)  # the server's immediate shutdown
    deadline = time.monotonic() + 30
    while any(p.exists() for p in left) and time.monotonic() < deadline:  # each removes its file as it exits
        time.sleep(0.05)
    shutil.rmtree(folder)


def processes_in(folder: Path) -> list[str]:
    """The command lines of the processes that name *folder* (a server's postmaster and backends do)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        if str(folder) in line:
            found.append(line)
    return found


def the_socket(folder: Path, proc: subprocess.Popen[str]) -> Path:
    """The socket folder of the throwaway server *proc* started in *folder*, once the server says, in its
    ``postmaster.pid``, that it accepts connections (what ``pg_ctl -w`` waits for)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        for pid_file in folder.glob("pgdecor-*/data/postmaster.pid"):
            try:
                lines = pid_file.read_text().splitlines()
            except FileNotFoundError:
                continue
            if len(lines) > 7 and lines[7].strip() == "ready":
                return pid_file.parent.parent / "sock"
        time.sleep(0.05)
    pytest.fail(f"no server became ready in {folder} (process status {proc.poll()})")


def wait_for_statement(sock: Path, text: str) -> None:
    """Until a backend of the server on *sock* runs a statement containing *text*."""
    deadline = time.monotonic() + 60
    with psycopg.connect(host=str(sock), port=5432, user="postgres", dbname="postgres", autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
                [f"%{text}%"],
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.05)
    pytest.fail(f"no backend ran {text!r}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_a_signal_to_check_watch_stops_its_server_and_removes_its_directory(
    signum: int, tmp_path: Path, server_tmp: Path
) -> None:
    """``pgdecor check --schema-file ... --watch`` told to stop (a CI job cancelled, ``timeout``, a closed
    terminal) stops its throwaway server and removes its directory, and exits with 128 + the signal's number."""
    (tmp_path / "schema.sql").write_text(ITEMS_SCHEMA)
    (tmp_path / "item_stubs.py").write_text(ITEMS_STUBS)
    watched = Watched(["check", "item_stubs", "--schema-file", "schema.sql", "--watch"], tmp_path)
    try:
        assert "pgdecor: done; watching" in "".join(watched.run())
        assert list(server_tmp.glob("pgdecor-*/data/postmaster.pid"))
        watched.proc.send_signal(signum)
        status = watched.proc.wait(timeout=60)
    finally:
        watched.proc.kill()  # if the signal did not end it
        watched.proc.wait()
        watched._reader.join(timeout=60)
        assert watched.proc.stdout is not None
        watched.proc.stdout.close()
    assert list(server_tmp.iterdir()) == []
    assert processes_in(server_tmp) == []
    assert status == 128 + signum


def test_sigterm_to_a_pytest_run_stops_the_fixtures_server_and_removes_its_directory(
    tmp_path: Path, server_tmp: Path
) -> None:
    """A users' suite under pytest, stopped by SIGTERM while a test waits in a statement on the fixtures'
    throwaway server, ends as Ctrl-C ends it: the statement is interrupted, the fixtures torn down, the server
    stopped and its directory removed."""
    (tmp_path / "test_waiting.py").write_text(WAITING_SUITE)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_waiting.py"]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_statement(the_socket(server_tmp, proc), "pg_sleep(120)")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.communicate()
    assert list(server_tmp.iterdir()) == [], out
    assert processes_in(server_tmp) == []
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "stopped by SIGTERM" in out


#: A program with a SIGHUP handler of its own, which starts a throwaway server and forks while it runs.
HANDLERS_PROGRAM = """
import os
import signal

from pgdecor.testing import TemporaryServer


def programs_own(signum, frame): ...


signal.signal(signal.SIGHUP, programs_own)
assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
with TemporaryServer():
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    assert signal.getsignal(signal.SIGHUP) is programs_own
    child = os.fork()
    if child == 0:
        os._exit(0 if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else 1)
    assert os.waitpid(child, 0)[1] == 0
assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
assert signal.getsignal(signal.SIGHUP) is programs_own
print("as expected")
"""


def test_a_server_handles_the_signals_only_while_it_runs_and_only_where_the_program_does_not(
    server_tmp: Path,
) -> None:
    """While a throwaway server runs, SIGTERM takes pgdecor's handler, but a SIGHUP handler of the program's own
    stays, and a child forked meanwhile has SIGTERM's default (the server is not its to stop); once the server has
    stopped, SIGTERM's default is back."""
    done = subprocess.run(
        [sys.executable, "-c", HANDLERS_PROGRAM], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "as expected\n"
    assert list(server_tmp.iterdir()) == []
