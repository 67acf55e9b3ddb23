"""Fixtures of the database the tests look at: a users schema with functions over it, the soak tables, and an admin
connection beside the sessions (the server itself, and a fresh schema per test, are pgdecor.testing's fixtures)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.usercode import soak

#: What `pg_exec` is: it runs SQL in the test's schema and returns the rows of its last statement.
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


@pytest.fixture
def soak_dsn(pg_server_dsn: str) -> str:
    """The soak tables (tests/usercode/soak.py), emptied, in the public schema (reachable through PgBouncer, which
    drops `options`)."""
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        conn.execute(soak.SCHEMA)
    return pg_server_dsn
