"""A throwaway PgBouncer in transaction pooling mode in front of the test server."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

PORT = 6432

#: With this set (as CI does), a missing PgBouncer fails the tests that need it instead of skipping them.
REQUIRED = "PGDECOR_REQUIRE_PGBOUNCER"


def binary() -> str:
    """PgBouncer's executable; the test that needs it is skipped where it is not installed (it is not on PyPI),
    unless $PGDECOR_REQUIRE_PGBOUNCER is set."""
    found = shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )
    if found is None:
        reason = "PgBouncer is not installed (e.g. `apt-get install pgbouncer`)"
        if os.environ.get(REQUIRED):
            pytest.fail(f"{reason}, and ${REQUIRED} says it must be")
        pytest.skip(reason)
    return found


@contextmanager
def pgbouncer(server_dsn: str, port: int = PORT, *, pool_size: int = 4, listen_addr: str = "") -> Iterator[str]:
    """Start PgBouncer (transaction mode, *pool_size* server connections per database and user) for *server_dsn*'s
    server, on *port* in a socket directory of its own, and on the TCP address *listen_addr* if given; yield a DSN
    through it (over TCP, with *listen_addr*)."""
    executable = binary()
    info = conninfo_to_dict(server_dsn)
    work = Path(tempfile.mkdtemp(prefix="pgdecor-pgbouncer-"))
    user = "postgres" if os.geteuid() == 0 else None  # PgBouncer, like PostgreSQL, refuses to run as root
    (work / "users.txt").write_text(f'"{info.get("user", "postgres")}" ""\n')
    (work / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={info['host']} port={info.get('port', 5432)}\n"
        "[pgbouncer]\n"
        f"listen_addr = {listen_addr}\n"
        f"unix_socket_dir = {work}\n"
        f"listen_port = {port}\n"
        "auth_type = trust\n"
        f"auth_file = {work / 'users.txt'}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\n"
        "max_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {work / 'pgbouncer.log'}\n"
        f"pidfile = {work / 'pgbouncer.pid'}\n"
    )
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (work, *work.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    process = subprocess.Popen([executable, str(work / "pgbouncer.ini")], user=user, cwd="/")
    dsn = make_conninfo(server_dsn, host=listen_addr or str(work), port=port)
    try:
        deadline = time.monotonic() + 10
        while True:  # wait until it accepts connections
            try:
                psycopg.connect(dsn, autocommit=True).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield dsn
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(work, ignore_errors=True)
