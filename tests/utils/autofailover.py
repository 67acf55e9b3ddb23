"""A pg_auto_failover formation on loopback for the failover tests: a monitor, a primary and a secondary, each
node a ``pg_autoctl run`` of its own (Debian's ``postgresql-15-auto-failover``), with the monitor's health checks
made quick so that a failover takes seconds, not half a minute."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from pgdecor.testing import find_bindir

#: Set in CI, where `.ci/run` installs pg_auto_failover: its absence is then a failure, not a skip.
REQUIRE_ENV = "PGDECOR_REQUIRE_AUTO_FAILOVER"

#: The monitor's health checks and failover, in milliseconds (with the defaults a failover takes ~30 s).
QUICK_CHECKS = {
    "health_check_period": 500,
    "health_check_timeout": 500,
    "health_check_max_retries": 1,
    "health_check_retry_delay": 200,
    "node_considered_unhealthy_timeout": 1500,
    # How long the monitor waits for a primary it cannot reach to demote itself before promoting another node (its
    # guard against two primaries); the default is 30 s.
    "primary_demote_timeout": 1000,
}


def pg_autoctl() -> str:
    """The pg_autoctl command; the test is skipped where it is not installed (unless CI requires it)."""
    found = shutil.which("pg_autoctl")
    if found is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"pg_auto_failover is not installed and ${REQUIRE_ENV} is set")
        pytest.skip("pg_auto_failover is not installed (e.g. `apt-get install postgresql-15-auto-failover`)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Formation:
    """The monitor and two nodes, started by `start`, stopped (and removed) by `stop`."""

    def __init__(self) -> None:
        self.command = pg_autoctl()
        self.dir = Path(tempfile.mkdtemp(prefix="pgdecor-autofailover-"))
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        # pg_autoctl keeps its configuration and state under the user's XDG directories: here, the formation's.
        self.env = {
            **os.environ,
            "PATH": f"{find_bindir()}:{os.environ.get('PATH', '')}",
            "HOME": str(self.dir),
            "XDG_CONFIG_HOME": str(self.dir / "config"),
            "XDG_DATA_HOME": str(self.dir / "data"),
            "XDG_RUNTIME_DIR": str(self.dir / "run"),
        }
        self.ports = {"monitor": _free_port(), "node1": _free_port(), "node2": _free_port()}
        self.runs: list[subprocess.Popen[bytes]] = []
        self.monitor = f"postgres://autoctl_node@localhost:{self.ports['monitor']}/pg_auto_failover?sslmode=disable"

    def _pgautoctl(self, *args: str) -> str:
        done = subprocess.run(
            [self.command, *args], env=self.env, user=self.user, capture_output=True, text=True, check=False, cwd="/"
        )
        if done.returncode != 0:
            msg = f"pg_autoctl {' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            raise RuntimeError(msg)
        return done.stdout

    def _run(self, name: str, *create: str) -> None:
        log = (self.dir / f"{name}.log").open("wb")
        cmd = [self.command, *create, "--pgdata", str(self.dir / name), "--pgport", str(self.ports[name])]
        cmd += ["--hostname", "localhost", "--auth", "trust", "--no-ssl", "--run"]
        self.runs.append(subprocess.Popen(cmd, env=self.env, user=self.user, stdout=log, stderr=log, cwd="/"))
        log.close()

    def start(self) -> Formation:
        self._run("monitor", "create", "monitor")
        monitor_dsn = f"host=localhost port={self.ports['monitor']} dbname=pg_auto_failover user=postgres"
        self._wait(lambda: _answers(monitor_dsn), "the monitor to start")
        with psycopg.connect(monitor_dsn, autocommit=True) as conn:
            for name, value in QUICK_CHECKS.items():
                conn.execute(f"ALTER SYSTEM SET pgautofailover.{name} = {value}")
            conn.execute("SELECT pg_reload_conf()")
        self._run("node1", "create", "postgres", "--monitor", self.monitor)
        self._wait(lambda: self.states() == {"node1": "single"}, "the first node to start")
        self._run("node2", "create", "postgres", "--monitor", self.monitor)
        self._wait(lambda: self.states() == {"node1": "primary", "node2": "secondary"}, "the secondary to join")
        return self

    def states(self) -> dict[str, str]:
        """Each node's reported state, as the monitor has it."""
        dsn = f"host=localhost port={self.ports['monitor']} dbname=pg_auto_failover user=postgres"
        try:
            with psycopg.connect(dsn, connect_timeout=2) as conn:
                rows = conn.execute("SELECT nodeport, reportedstate FROM pgautofailover.node").fetchall()
        except psycopg.Error:
            return {}
        names = {port: name for name, port in self.ports.items()}
        return {names.get(port, str(port)): str(state) for port, state in rows}

    def uri(self, **options: str) -> str:
        """The formation's multi-host connection string, as ``pg_autoctl show uri`` gives it (plus *options*)."""
        uri = self._pgautoctl("show", "uri", "--formation", "default", "--monitor", self.monitor).strip()
        extra = "".join(f"&{k}={v}" for k, v in {"user": "postgres", **options}.items())
        return uri.replace("sslmode=prefer", "sslmode=disable") + extra

    def node_dsn(self, name: str) -> str:
        return f"host=localhost port={self.ports[name]} dbname=postgres user=postgres"

    def kill(self, name: str) -> None:
        """Stop a node at once (its pg_autoctl and its Postgres), as a machine that dies."""
        self._pgautoctl("stop", "--pgdata", str(self.dir / name), "--immediate")
        self._wait(lambda: not _answers(self.node_dsn(name)), f"{name} to be gone", timeout=30)

    def _wait(self, ready: object, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not ready():  # type: ignore[operator]
            if time.monotonic() > deadline or any(run.poll() is not None for run in self.runs):
                logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(self.dir.glob("*.log")))
                msg = (
                    f"pg_auto_failover: no {what} (a node exited, or it took too long); states {self.states()}\n{logs}"
                )
                raise RuntimeError(msg)
            time.sleep(0.2)

    def wait_for(self, states: dict[str, str], timeout: float = 60) -> None:
        self._wait(lambda: self.states() == states, f"states {states}", timeout)

    def stop(self) -> None:
        for name in ("node2", "node1", "monitor"):
            if (self.dir / name).exists():
                subprocess.run(
                    [self.command, "stop", "--pgdata", str(self.dir / name), "--immediate"],
                    env=self.env,
                    user=self.user,
                    capture_output=True,
                    check=False,
                    cwd="/",
                )
        for run in self.runs:
            _ended(run)
        shutil.rmtree(self.dir, ignore_errors=True)


def _ended(run: subprocess.Popen[bytes]) -> None:
    try:
        run.wait(timeout=30)
    except subprocess.TimeoutExpired:
        run.kill()
        run.wait()


def _answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2):
            return True
    except psycopg.Error:
        return False
