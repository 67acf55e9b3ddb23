"""`pgdecor demo`: a knowledge base kept in stored functions, called through typed stubs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

from pgdecor import procedure, query, session
from pgdecor._server.server import temporary_dsn
from pgdecor._sources.config import check_conninfo

SCHEMA = "pgdecor_demo"

SETUP = """
CREATE EXTENSION IF NOT EXISTS ltree;
CREATE SCHEMA pgdecor_demo;

CREATE TABLE pgdecor_demo.articles (
    id serial PRIMARY KEY,
    path ltree NOT NULL UNIQUE,
    title text NOT NULL,
    body text
);

CREATE FUNCTION pgdecor_demo.add_article(path text, title text, body text DEFAULT NULL)
RETURNS pgdecor_demo.articles LANGUAGE sql
AS $$ INSERT INTO pgdecor_demo.articles (path, title, body) VALUES (path::ltree, title, body) RETURNING * $$;

-- Walks the tree below `root` depth first, one recursive call per child.
CREATE FUNCTION pgdecor_demo.subtree(root text, level int DEFAULT 0)
RETURNS TABLE (path text, title text, depth int) LANGUAGE plpgsql STABLE AS $$
DECLARE
    child record;
BEGIN
    FOR child IN
        SELECT a.path, a.title FROM pgdecor_demo.articles a
        WHERE a.path ~ (root || '.*{1}')::lquery ORDER BY a.path
    LOOP
        path := child.path::text;
        title := child.title;
        depth := level + 1;
        RETURN NEXT;
        RETURN QUERY SELECT * FROM pgdecor_demo.subtree(child.path::text, level + 1);
    END LOOP;
END
$$;

CREATE FUNCTION pgdecor_demo.breadcrumbs(path text) RETURNS SETOF text LANGUAGE sql STABLE
AS $$ SELECT a.title FROM pgdecor_demo.articles a WHERE a.path @> breadcrumbs.path::ltree ORDER BY nlevel(a.path) $$;
"""


@dataclass
class Article:
    id: int
    path: str
    title: str
    body: str | None


@dataclass
class Node:
    path: str
    title: str
    depth: int


@procedure("pgdecor_demo.add_article")
def add_article(path: str, title: str, body: str | None = None) -> Article: ...


@procedure("pgdecor_demo.subtree")
def subtree(root: str, level: int = 0) -> list[Node]: ...


@procedure("pgdecor_demo.breadcrumbs")
def breadcrumbs(path: str) -> list[str]: ...


@query("SELECT count(*) FROM pgdecor_demo.articles")
def article_count() -> int: ...


ARTICLES = [
    ("kb", "Knowledge base"),
    ("kb.postgres", "PostgreSQL"),
    ("kb.postgres.functions", "Stored functions"),
    ("kb.postgres.functions.plpgsql", "PL/pgSQL"),
    ("kb.postgres.types", "Types"),
    ("kb.postgres.types.ltree", "ltree paths"),
    ("kb.python", "Python"),
    ("kb.python.typing", "Typing"),
]


def run(dsn: str) -> None:
    """Create the demo schema on *dsn*, use it through the stubs, print what they return, and drop it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) %s", [SCHEMA]
        ).fetchone()
        if exists:
            msg = f"schema {SCHEMA} already exists on this server; the demo leaves it alone"
            raise SystemExit(msg)
        conn.execute(SETUP)
    try:
        with session(dsn):
            for path, title in ARTICLES:
                add_article(path, title)
            added = add_article("kb.python.typing.pgdecor", "pgdecor", body="Typed stubs for stored functions")
            print(f"added article {added.id}: {added.title!r} at {added.path}")
            print(f"{article_count()} articles; the tree from kb:")
            for node in subtree("kb"):
                print(f"{'  ' * node.depth}{node.title}  ({node.path})")
            print("breadcrumbs of pgdecor:", " > ".join(breadcrumbs(added.path)))
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


@contextlib.contextmanager
def demo_dsn(dsn: str | None) -> Iterator[str]:
    """The DSN given (or $DATABASE_URL), else a throwaway server's."""
    given = "--dsn" if dsn else "$DATABASE_URL"
    dsn = dsn or os.environ.get("DATABASE_URL")
    if dsn:
        check_conninfo(given, dsn)
        yield dsn
        return
    print("starting a throwaway PostgreSQL server ...")
    with temporary_dsn() as temp:
        yield temp
