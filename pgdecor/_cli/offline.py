"""What ``pgdecor check`` and ``generate`` need to run without a database of the user's: a throwaway server whose
databases are built from schema files (``--schema-file``, ``--migrations``), and ``--watch``, which runs the
command again whenever the files it reads change.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgdecor._server.signals import Terminated

__all__ = ["CommandError", "SchemaFiles", "module_paths", "rerun", "watch"]

_databases = itertools.count(1)


class CommandError(Exception):
    """An expected failure of a command, told in one line."""


class SchemaFiles:
    """The DDL a command reads instead of a live database: schema files in the order given, then the ``.sql``
    files of a migrations folder in the order of their names, numbers compared as numbers (``2_`` before
    ``10_``)."""

    def __init__(self, schema_files: Sequence[str], migrations: str | None) -> None:
        files = [Path(f) for f in schema_files]
        for f in files:
            if not f.is_file():
                msg = f"--schema-file {f}: no such file"
                raise CommandError(msg)
        self.folder = Path(migrations) if migrations else None
        if self.folder is not None and not self.folder.is_dir():
            msg = f"--migrations {self.folder}: no such folder"
            raise CommandError(msg)
        self._files = files

    @property
    def files(self) -> list[Path]:
        """The files, in the order they are applied (a migrations folder is read again at each call)."""
        found = self._files.copy()
        if self.folder is not None:
            migrations = sorted(self.folder.glob("*.sql"), key=_natural)
            if not migrations:
                msg = f"--migrations {self.folder}: no .sql files there"
                raise CommandError(msg)
            found += migrations
        return found

    @contextlib.contextmanager
    def database(self, server: str) -> Iterator[str]:
        """A new database on *server* with the files applied, each as one script in autocommit (as ``psql -f``
        would); dropped at the end."""
        name = f"pgdecor_schema_{next(_databases)}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        try:
            dsn = make_conninfo(server, dbname=name)
            with psycopg.connect(dsn, autocommit=True) as conn:
                for f in self.files:
                    _apply(conn, f)
            yield dsn
        finally:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _natural(path: Path) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _apply(conn: psycopg.Connection[object], path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        conn.execute(text.encode())  # bytes: run as it is, `%` and all, in one simple query
    except psycopg.Error as err:
        where = ""
        position = err.diag.statement_position
        if position and position.isdigit():
            where = f":{text[: int(position)].count(chr(10)) + 1}"
        msg = (
            f"{path}{where}: {err.diag.message_primary or err} (a fresh server ran the file; roles, extensions and "
            f"settings it needs must be created in the files too)"
        )
        raise CommandError(msg) from err


def watch(paths: Callable[[], list[Path]], run: Callable[[], int], *, interval: float = 0.3) -> int:
    """Call *run*, then again each time a file of *paths* (folders: their ``.py`` and ``.sql`` files) changes,
    until interrupted (Ctrl-C); the status is 0 then. SIGTERM or SIGHUP (`Terminated`) is raised on."""
    try:
        while True:
            status = run()
            seen = _snapshot(paths())
            what = "done" if status == 0 else f"exit status {status}"
            files = f"{len(seen)} file{'' if len(seen) == 1 else 's'}"
            print(f"pgdecor: {what}; watching {files} (Ctrl-C to stop)", file=sys.stderr, flush=True)
            while _snapshot(paths()) == seen:
                time.sleep(interval)
    except KeyboardInterrupt as interrupted:
        if isinstance(interrupted, Terminated):
            raise
        return 0


def _snapshot(paths: list[Path]) -> dict[Path, tuple[int, int]]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix in (".py", ".sql"))
        else:
            files.append(p)
    out = {}
    for f in files:
        try:
            stat = f.stat()
        except FileNotFoundError:  # removed meanwhile: a change, seen at the next look
            continue
        out[f] = (stat.st_mtime_ns, stat.st_size)
    return out


def module_paths(modules: Sequence[str]) -> list[Path]:
    """The files of *modules* (a package: its folder), found without importing them."""
    found = []
    for name in modules:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            continue
        if spec.submodule_search_locations:
            found += [Path(p) for p in spec.submodule_search_locations]
        elif spec.origin:
            found.append(Path(spec.origin))
    return found


def rerun(argv: Sequence[str], dsn: str) -> int:
    """The command *argv* (``pgdecor`` arguments) on the database *dsn* in a new process: modules changed since are
    imported anew. The DSN is the process's ``$DATABASE_URL``, never on its command line, which anyone may read."""
    # -B: no bytecode written, so that a module changed twice within a second is never read from a stale cache
    command = [sys.executable, "-B", "-m", "pgdecor", *argv]
    return subprocess.run(command, env={**os.environ, "DATABASE_URL": dsn}, check=False).returncode
