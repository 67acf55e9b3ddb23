"""pgdecor where Python services live: one `Database` opened by an async framework serves its sync handlers too
(FastAPI runs `def` endpoints in a thread pool), each in a sync session of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import pytest
from conftest import Exec

from pgdecor import ArgumentError, Database, NoSessionError, query


@query("INSERT INTO hits VALUES (%(path)s)")
def hit(path: str) -> None: ...


@query("INSERT INTO hits VALUES (%(path)s)")
async def ahit(path: str) -> None: ...


@query("SELECT count(*) FROM hits")
def hits() -> int: ...


def test_a_database_opened_async_serves_sync_sessions_too(pg_dsn: str, pg_exec: Exec) -> None:
    """FastAPI under the ASGI middleware, with async and sync (thread pool) endpoints: the sync ones open
    ``with db.session()`` on the same `Database` (its sync pool opened at the first, closed with it); a stub called
    in a sync endpoint without one says how to open it."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from pgdecor.asgi import SessionMiddleware

    pg_exec("CREATE TABLE hits (path text NOT NULL)")
    db = Database(pg_dsn, max_size=2)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with db:
            yield

    api = FastAPI(lifespan=lifespan)
    api.add_middleware(SessionMiddleware, source=db)

    @api.post("/async")
    async def async_endpoint() -> dict[str, bool]:
        await ahit("async")
        return {"ok": True}

    @api.post("/sync")
    def sync_endpoint() -> dict[str, int]:
        with db.session():
            hit("sync")
            return {"hits": hits()}

    @api.post("/forgot")
    def forgot() -> dict[str, str]:
        try:
            hit("forgot")
        except NoSessionError as err:
            return {"error": str(err)}
        return {"error": ""}

    with TestClient(api) as client:
        for _ in range(5):
            assert client.post("/async").status_code == 200
            assert client.post("/sync").status_code == 200
        advice = client.post("/forgot").json()["error"]
    assert "open a sync session here with `with session(...)`" in advice
    assert db._pool is None  # the sync sessions' pool was closed with the database
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT path, count(*) FROM hits GROUP BY path ORDER BY path").fetchall() == [
            ("async", 5),
            ("sync", 5),
        ]
    assert db.counters.committed == 10


def test_a_database_opened_sync_still_asks_for_async_with(pg_dsn: str) -> None:
    """The other way round stays refused: an async pool belongs to an event loop that a sync `with` does not own."""
    import asyncio

    async def scenario(db: Database) -> None:
        async with db.session():
            pass

    with Database(pg_dsn) as db, pytest.raises(ArgumentError, match=r"must be entered with `with session"):
        asyncio.run(scenario(db))
