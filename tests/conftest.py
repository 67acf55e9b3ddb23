"""Fixtures: a real PostgreSQL (throwaway, or $PGDECOR_TEST_DSN) and a fresh schema per test."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

# pgdecor.testing's fixtures come through its entry point (tests/test_testing.py runs a suite that relies on it).
pytest_plugins = ["pytester"]

Exec = Callable[..., list[tuple[Any, ...]]]

USERS_SCHEMA = """
CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, email text);
INSERT INTO users VALUES (1, 'ann', 'ann@example.org'), (2, 'bob', NULL), (3, 'cid', 'cid@example.com');

CREATE FUNCTION get_user(id int) RETURNS SETOF users LANGUAGE sql STABLE
AS $$ SELECT * FROM users u WHERE u.id = get_user.id $$;

CREATE FUNCTION users_by_domain(domain text, "limit" int) RETURNS SETOF users LANGUAGE sql STABLE
AS $$ SELECT * FROM users WHERE email LIKE '%@' || domain ORDER BY id LIMIT "limit" $$;

CREATE FUNCTION user_name(id int) RETURNS text LANGUAGE sql STABLE
AS $$ SELECT name FROM users u WHERE u.id = user_name.id $$;
"""


def pytest_configure(config: pytest.Config) -> None:
    # Sessions must give connections back by themselves; with the collector off, anything that relied on it
    # would leak, and psycopg's ResourceWarning (an error under filterwarnings) would say so.
    gc.disable()


@pytest.fixture
def users(pg_dsn: str, pg_exec: Exec) -> str:
    """A schema with a users table and functions over it; returns its DSN."""
    pg_exec(USERS_SCHEMA)
    return pg_dsn


@pytest.fixture
def admin(pg_server_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection outside any session, to look at the server from the side."""
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        yield conn


#: Figures tests measured (soaks, fault runs), printed at the end of the run: a reader sees the number itself.
FIGURES: list[str] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a line of measured figures for the end-of-run summary."""
    return lambda line: FIGURES.append(f"{request.node.name}: {line}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("measured")
        for line in FIGURES:
            terminalreporter.write_line(line)
