"""Every Python block of README.md and docs/ runs as pasted, against a real server holding the schema its page
shows, and prints what its comments say (see tests/utils/examples.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.utils.examples import Block, matches, python_blocks, run, schema_of

BLOCKS = python_blocks()


def test_the_docs_have_examples() -> None:
    """The collection itself: the pages are found and their blocks read (a broken reader would test nothing)."""
    pages = {b.page.name for b in BLOCKS}
    assert {"README.md", "sessions.md", "testing.md"} <= pages
    assert len(BLOCKS) >= 18


def _recreate(conn: psycopg.Connection[object], name: str, template: str | None = None) -> None:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    conn.execute(create)


@dataclass
class Server:
    dsn: str
    conn: psycopg.Connection[object]


@pytest.fixture(scope="module")
def server(pg_server_dsn: str) -> Iterator[Server]:
    """An autocommit connection to the server, whose address ``PGHOST`` and friends give to the examples."""
    params = conninfo_to_dict(pg_server_dsn)
    env = {"PGHOST": params.get("host"), "PGPORT": params.get("port"), "PGUSER": params.get("user")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items() if v is not None})
    try:
        with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
            yield Server(pg_server_dsn, conn)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_templates: dict[Path, str] = {}


def _app_database(server: Server, page: Path) -> None:
    """A fresh database ``app`` holding the page's schema."""
    template = _templates.get(page)
    if template is None:
        template = _templates[page] = f"docs_{len(_templates)}"
        _recreate(server.conn, template)
        ddl = schema_of(page)
        if ddl.strip():
            with psycopg.connect(make_conninfo(server.dsn, dbname=template), autocommit=True) as conn:
                conn.execute(ddl.encode())
    _recreate(server.conn, "app", template)


@pytest.mark.parametrize(
    "block",
    # a block that is a test suite runs in a pytest of its own
    [pytest.param(b, marks=pytest.mark.slow) if b.files() is not None else b for b in BLOCKS],
    ids=[b.id for b in BLOCKS],
)
def test_example(block: Block, server: Server, tmp_path: Path) -> None:
    _app_database(server, block.page)
    files = block.files()
    if files is not None:
        _run_suite(files, tmp_path)
        return
    printed = run(block)
    expected = block.expected()
    wrong = len(printed) != len(expected) or not all(map(matches, expected, printed))
    assert not wrong, f"{block.id} printed:\n" + "\n".join(printed) + "\nits comments say:\n" + "\n".join(expected)


def _run_suite(files: dict[str, str], folder: Path) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    tests = sum(len(re.findall(r"^(?:async )?def test_", text, re.MULTILINE)) for text in files.values())
    env = {**os.environ, "PGDECOR_TEST_DSN": "dbname=app"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{tests} passed" in done.stdout.splitlines()[-1]
