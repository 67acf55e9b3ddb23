"""No password leaves pgdecor: on every failure path, whatever it shows (an exception's message, repr, notes and
chain, a log record, a span, a command's output, a child process's command line) has a conninfo's passwords
masked. Each test drives the paths with distinctive passwords and greps everything emitted for any piece of them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import pgdecor
from pgdecor import ArgumentError, Database, query, session
from pgdecor.__main__ import main
from pgdecor._secrets import masked
from pgdecor._sources.config import check_conninfo, where
from pgdecor.testing import TemporaryServer, assert_stubs_match, schema_dsn
from tests.fix_telemetry import Telemetry

#: The keeper role's password, and one that is wrong; a leak of any piece of either is a leak.
PASSWORD = "Qx7Zk-sekr3t-Wv9Jp"
WRONG = "Gm4Rt-wr0ng-Hy2Lb"
PIECES = ("Qx7Zk", "sekr3t", "Wv9Jp", "Gm4Rt", "wr0ng", "Hy2Lb")

STUBS = """
from pgdecor import query


@query("SELECT 1 / 0")
def broken() -> int: ...
"""


@query("SELECT 1 / 0")
def broken() -> int: ...


@query("SELECT 1 / 0")
async def abroken() -> int: ...


def told(err: BaseException) -> str:
    """Everything an exception shows: its traceback as Python prints it (notes, causes and contexts), and the
    message and repr of every exception of its chain, a context it suppresses too."""
    parts = ["".join(traceback.format_exception(type(err), err, err.__traceback__))]
    todo, seen = [err], set()
    while todo:
        e = todo.pop()
        if id(e) not in seen:
            seen.add(id(e))
            parts += [str(e), repr(e), *getattr(e, "__notes__", ())]
            todo += [x for x in (e.__cause__, e.__context__) if x is not None]
    return "\n".join(parts)


@dataclass
class Emitted:
    """What the paths of one test showed, each under the name of where it came from."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, text: str) -> None:
        assert text.strip(), f"{where} showed nothing: the path was not driven"
        self.texts.append((where, text))

    def error(self, where: str, run: Callable[[], object]) -> BaseException:
        """Run a failure path; record the exception it must raise."""
        try:
            run()
        except Exception as err:  # noqa: BLE001 - any failure: what it shows is the point
            self.add(where, told(err))
            return err
        pytest.fail(f"{where} did not fail")

    def leaks(self) -> list[str]:
        return [f"{where}: {piece!r} in {text!r}" for where, text in self.texts for piece in PIECES if piece in text]


@dataclass
class Keeper:
    """A server where the role ``keeper`` logs in with `PASSWORD` only (SCRAM), on a socket."""

    socket: str
    server_dsn: str

    def dsn(self, password: str) -> str:
        return make_conninfo(self.server_dsn, user="keeper", password=password, dbname="keeper")

    def uri(self, password: str) -> str:
        return f"postgresql://keeper:{quote(password, safe='')}@/keeper?host={quote(self.socket)}&port=5432"


@pytest.fixture(scope="module")
def keeper() -> Iterator[Keeper]:
    with TemporaryServer() as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE keeper LOGIN PASSWORD {}").format(PASSWORD))
            conn.execute("CREATE DATABASE keeper OWNER keeper")
        assert server.dir is not None
        hba = server.dir / "data" / "pg_hba.conf"
        hba.write_text("local all keeper scram-sha-256\n" + hba.read_text())
        server.restart()
        found = Keeper(str(conninfo_to_dict(server.dsn)["host"]), server.dsn)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(found.dsn(WRONG)).close()
        psycopg.connect(found.uri(PASSWORD)).close()
        yield found


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a module of stubs, the current directory and on the path; no $DATABASE_URL of the
    caller's."""
    (tmp_path / "secret_stubs.py").write_text(STUBS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path


def command(project: Path, *argv: str, env: dict[str, str] | None = None) -> str:
    """``python -m pgdecor ARGV`` in *project*: what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "pgdecor", *argv],
        cwd=project,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(project), *sys.path]), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return f"{done.stdout}{done.stderr}(exit status {done.returncode})"


UNREADABLE = {
    "a mistyped keyword": f"host=/nonexistent passwrd={PASSWORD}",
    "no = after password": f"host=/nonexistent password {PASSWORD}",
    "a keyword alone after the password": f"host=/nonexistent password={PASSWORD} dbname",
    "an unterminated quote": f"host=/nonexistent password='{PASSWORD}",
    "a space in the password": f"host=/nonexistent password={PASSWORD.replace('-', ' ')} dbname=app",
    "a space and an = in the password": f"host=/nonexistent password={PASSWORD.replace('-', ' =')}",
    "sslpassword, then a word": f"host=/nonexistent sslpassword={PASSWORD} x",
    "a URI libpq quotes whole": f"postgresql://keeper:{PASSWORD}@[::1/keeper",
    "a URI with a bad escape in the password": f"postgresql://keeper:{PASSWORD}%zz@localhost/keeper",
    # libpq reads it before version 17 (and then finds no server there)
    "a URI with a space in the password": f"postgresql://keeper:{PASSWORD.replace('-', ' ')}@/k?host=/nonexistent",
    "a URI with a mistyped parameter": f"postgresql://localhost/keeper?passwrd={PASSWORD}",
    "a URI with its password as a parameter": f"postgresql://localhost/keeper?password={PASSWORD}&oops",
    "a URI without its scheme": f"keeper:{PASSWORD}@localhost/keeper",
    "a URI whose password has a /": f"postgresql://keeper:{PASSWORD.replace('-', '/')}@localhost/keeper",
    "a URI whose password has an @": f"postgresql://keeper:{PASSWORD.replace('-', '@')}@localhost/keeper",
}


def readable(conninfo: str) -> bool:
    try:
        check_conninfo("readable()", conninfo)
    except ArgumentError:
        return False
    return True


def as_given(conninfo: str) -> Callable[[Keeper], str]:
    return lambda _: conninfo


#: Each case: what goes wrong, and its conninfo on the keeper server.
CASES: dict[str, tuple[str, Callable[[Keeper], str]]] = {
    **{name: ("unreadable", as_given(conninfo)) for name, conninfo in UNREADABLE.items()},
    "no server there": ("no server", lambda _: f"host=/nonexistent port=1 user=keeper password={PASSWORD}"),
    "no server there (URI)": ("no server", lambda _: f"postgresql://keeper:{PASSWORD}@/k?host=/nonexistent&port=1"),
    "a wrong password": ("wrong password", lambda k: k.dsn(WRONG)),
    "a wrong password (URI)": ("wrong password", lambda k: k.uri(WRONG)),
    "the right password, a statement that fails": ("statement", lambda k: k.dsn(PASSWORD)),
    "the right password, a statement that fails (URI)": ("statement", lambda k: k.uri(PASSWORD)),
}


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "conninfo"), CASES.values(), ids=CASES.keys())
def test_no_failure_shows_a_password(
    kind: str,
    conninfo: Callable[[Keeper], str],
    *,
    keeper: Keeper,
    project: Path,
    telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A conninfo libpq cannot read (or reads wrongly), no server, a wrong password, a statement that fails: every
    way in (sessions sync and async, a Database and its replica, `check`, the fixtures' helpers, the commands with
    ``--dsn`` or ``$DATABASE_URL``, in one line or with ``--debug``) fails as it should, and neither its errors
    (messages, reprs, notes, chained errors, tracebacks), the log records (psycopg's and the pool's too), the
    spans and histogram, a repr nor a command's output shows any piece of the password. A conninfo libpq cannot
    read is refused before anything connects, shown masked, libpq's own error (which may quote it) not chained."""
    dsn = conninfo(keeper)
    if kind == "unreadable" and readable(dsn):
        kind = "no server"
    caplog.set_level(logging.DEBUG)
    emitted = Emitted()

    def call() -> None:
        with session(dsn):
            broken()

    async def acall() -> None:
        async with session(dsn):
            await abroken()

    def pooled() -> None:
        with Database(dsn, min_size=1, timeout=1) as db, db.session():
            broken()

    ok = "postgresql:///keeper"
    failing: dict[str, Callable[[], object]] = {
        "session()": call,
        "async session()": lambda: asyncio.run(acall()),
        "Database()": pooled,
        "session(replica=)": lambda: session(ok, replica=dsn),
        "Database(replica=)": lambda: Database(ok, replica=dsn),
        "check()": lambda: pgdecor.check(["secret_stubs"], dsn),
        "assert_stubs_match()": lambda: assert_stubs_match(["secret_stubs"], dsn),
        "schema_dsn()": lambda: schema_dsn(dsn, "app"),
    }
    if kind != "unreadable":  # then only the calls fail: the helpers take the conninfo, or check passes
        failing = {k: v for k, v in failing.items() if k in ("session()", "async session()", "Database()")}
        if kind != "statement":
            failing["check()"] = lambda: pgdecor.check(["secret_stubs"], dsn)
        emitted.add("repr(Database)", repr(Database(dsn)))
        emitted.add("where()", where(dsn))
    errors = {name: emitted.error(name, run) for name, run in failing.items()}
    for name, err in errors.items():
        if kind == "unreadable":
            assert isinstance(err, ArgumentError), (name, told(err))
            assert "***" in str(err)
            assert err.__cause__ is None
            assert err.__context__ is None
        elif kind == "statement":
            assert isinstance(err, psycopg.errors.DivisionByZero), (name, told(err))
        elif kind == "wrong password" and name != "Database()":  # the pool says it timed out, and logs why
            assert "password authentication failed" in str(err), (name, told(err))

    failed = kind != "statement"
    for argv in (["check", "secret_stubs"], ["generate", "--schema", "public"], ["demo"]):
        assert (main([*argv, "--dsn", dsn]) == 2) == failed
        emitted.add(f"{argv[0]} --dsn", "".join(capsys.readouterr()))
        with monkeypatch.context() as env:
            env.setenv("DATABASE_URL", dsn)
            assert (main(argv) == 2) == failed
            emitted.add(f"{argv[0]} with $DATABASE_URL", "".join(capsys.readouterr()))
        if failed:
            emitted.error(f"--debug {argv[0]} --dsn", functools.partial(main, ["--debug", *argv, "--dsn", dsn]))
    emitted.add("python -m pgdecor --debug check", command(project, "--debug", "check", "secret_stubs", "--dsn", dsn))
    emitted.add("python -m pgdecor generate", command(project, "generate", "--schema", "x", env={"DATABASE_URL": dsn}))

    for record in caplog.records:
        emitted.add(f"log record {record.name}", f"{record.getMessage()} {record.exc_text or ''} {record.args!r}")
    if kind != "unreadable":
        emitted.add("the log", caplog.text)
        assert telemetry.spans(), "no span recorded"
    for text in telemetry.texts():
        emitted.add("telemetry", text)
    assert emitted.leaks() == []


def test_a_conninfo_of_another_type_is_named_by_its_type_only() -> None:
    """Bytes (or a URL object) where a conninfo string belongs are refused naming their type, not their value."""
    given = f"password={PASSWORD} host=/nonexistent".encode()
    emitted = Emitted()
    for name, run in {
        "session()": lambda: session(given),  # type: ignore[arg-type]
        "session(replica=)": lambda: session("postgresql:///app", replica=given),  # type: ignore[arg-type]
        "Database()": lambda: Database(given),  # type: ignore[arg-type]
    }.items():
        err = emitted.error(name, run)
        assert isinstance(err, ArgumentError)
        assert str(err).endswith("not bytes")
    assert emitted.leaks() == []


@pytest.mark.slow
def test_watch_gives_its_command_the_database_in_its_environment_not_on_its_command_line(
    keeper: Keeper, project: Path
) -> None:
    """``check --watch --dsn`` runs the check in a new process that finds the DSN in ``$DATABASE_URL``: the
    process's command line, which any user may read (``ps``, /proc), holds no password."""
    seen = project / "cmdline"
    (project / "watched_stubs.py").write_text(
        f"from pathlib import Path\n\nPath({str(seen)!r}).write_bytes(Path('/proc/self/cmdline').read_bytes())\n"
        + STUBS
    )
    watch = subprocess.Popen(
        [sys.executable, "-m", "pgdecor", "check", "watched_stubs", "--dsn", keeper.uri(PASSWORD), "--watch"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(project), *sys.path])},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert watch.stdout is not None
    out = []
    try:
        for line in watch.stdout:  # up to the line that says the run is over (a hang fails by the timeout below)
            out.append(line)
            if "watching" in line:
                break
    finally:
        watch.send_signal(signal.SIGINT)
        assert watch.wait(timeout=60) == 0
        watch.stdout.close()
    child = seen.read_bytes().split(b"\0")
    assert b"check" in child
    assert b"watched_stubs" in child
    assert "0 problems" in "".join(out), out  # the check ran on the server: the DSN reached it
    emitted = Emitted()
    emitted.add("the command's command line", repr(child))
    emitted.add("its output", "".join(out))
    assert emitted.leaks() == []


@pytest.mark.slow
def test_the_fixtures_refuse_a_test_dsn_they_cannot_read_with_its_values_masked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``$PGDECOR_TEST_DSN`` libpq cannot read fails the tests that use the server, saying so without showing
    its password."""
    monkeypatch.setenv("PGDECOR_TEST_DSN", UNREADABLE["a URI libpq quotes whole"])
    pytester.makepyfile(test_it="def test_dsn(pg_dsn):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    output = "\n".join(result.outlines + result.errlines)
    assert "$PGDECOR_TEST_DSN: 'postgresql://keeper:***@[::1/keeper' is not a connection string" in output
    emitted = Emitted()
    emitted.add("pytest's output", output)
    assert emitted.leaks() == []


SENTINELS = ("Qx7Zk", "Wv9Jp")


def forms(password: str) -> dict[str, str]:
    """Conninfos holding *password*, written right or wrong."""
    escaped = password.replace("\\", "\\\\").replace("'", "\\'")
    return {
        "quoted": f"host=/nonexistent password='{escaped}' dbname=app",
        "as it is": f"host=/nonexistent dbname=app password={password}",
        "URI, percent-encoded": f"postgresql://keeper:{quote(password, safe='')}@localhost/app",
        "URI, as it is": f"postgresql://keeper:{password}@localhost/app",
        "URI parameter, as it is": f"postgresql://localhost/app?password={password}",
    }


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=12))
def test_no_password_is_shown_whatever_it_holds(middle: str) -> None:
    """A password of any characters, in each way of writing it: either libpq reads the conninfo and the password is
    in neither `masked`, the server's address in messages nor a Database's repr, or it is refused with a message
    that shows none of it."""
    password = SENTINELS[0] + middle + SENTINELS[1]
    for form, conninfo in forms(password).items():
        try:
            shown = [repr(Database(conninfo)), where(conninfo), masked(conninfo)]
        except ArgumentError as err:
            shown = [told(err)]
        for text in shown:
            assert not any(s in text for s in SENTINELS), (form, conninfo, text)


def test_masked_keeps_what_is_not_a_secret() -> None:
    """What libpq reads is shown but for the password; of what it cannot read, the keywords it names."""
    assert masked(f"host=db port=5432 user=app password={PASSWORD} dbname=app") == (
        "host=db port=5432 user=app password=*** dbname=app"
    )
    assert masked(f"postgresql://app:{PASSWORD}@db:5432/app?sslmode=require") == (
        "postgresql://app:***@db:5432/app?sslmode=require"
    )
    assert masked(f"host=db passwrd={PASSWORD}") == "host=*** passwrd=***"
    assert masked("postgresql:///app") == "postgresql:///app"
