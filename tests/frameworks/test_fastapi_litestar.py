"""pgdecor where Python services live: one `Database` opened by an async framework serves its sync handlers too
(FastAPI runs `def` endpoints in a thread pool), each in a sync session of its own; the frameworks' dependency
injection (FastAPI's ``Depends``, Litestar's ``Provide``) gives a request its session.

The endpoints' annotations are evaluated as they are defined (no ``from __future__ import annotations``): the
frameworks read them, and they name dependencies local to each test."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import psycopg
import pytest

from pgdecor import ArgumentError, Database, NoSessionError, Session, query
from tests.fix_db import Exec


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
    with pytest.raises(NoSessionError, match="is not open"):  # the sync sessions' pool closed with the database
        _ = db.pool
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


#: A unique constraint checked at COMMIT: a request that writes the same path twice fails to commit.
DEFERRED_HITS = "CREATE TABLE hits (path text NOT NULL UNIQUE DEFERRABLE INITIALLY DEFERRED)"


def stored_hits(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [str(r[0]) for r in conn.execute("SELECT path FROM hits ORDER BY path").fetchall()]


def test_a_fastapi_dependency_gives_each_request_a_session_ended_before_the_response(
    pg_dsn: str, pg_exec: Exec
) -> None:
    """``Depends(db_session, scope="function")``, a dependency that yields a session of the `Database`: the
    request's stubs commit when the endpoint returns, before the response is sent; an endpoint that raises (an
    ``HTTPException`` or any other) rolls back, and a COMMIT that fails is answered 500. With FastAPI's default
    scope, the session would end after the response was sent: a failed COMMIT answered 200, as the last request
    shows."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.testclient import TestClient

    pg_exec(DEFERRED_HITS)
    db = Database(pg_dsn, max_size=2)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with db:
            yield

    async def db_session() -> AsyncIterator[Session]:
        async with db.session() as session:
            yield session

    api = FastAPI(lifespan=lifespan)

    @api.post("/{path}")
    async def write(path: str, session: Annotated[Session, Depends(db_session, scope="function")]) -> dict[str, str]:
        await ahit(path)
        if path.startswith("twice"):
            await ahit(path)  # the COMMIT fails
        if path == "conflict":
            raise HTTPException(409)
        if path == "bug":
            raise RuntimeError(path)
        return {"path": path}

    @api.post("/late/{path}")
    async def late(path: str, session: Annotated[Session, Depends(db_session)]) -> dict[str, str]:
        await ahit(path)
        await ahit(path)
        return {"path": path}

    with TestClient(api, raise_server_exceptions=False) as client:
        assert client.post("/kept").status_code == 200
        assert client.post("/conflict").status_code == 409
        assert client.post("/bug").status_code == 500
        assert client.post("/twice").status_code == 500
        assert client.post("/late/twice-late").status_code == 200
    assert stored_hits(pg_dsn) == ["kept"]
    assert (db.counters.committed, db.counters.rolled_back) == (1, 4)


def test_a_litestar_dependency_or_the_asgi_middleware_gives_each_request_a_session(pg_dsn: str, pg_exec: Exec) -> None:
    """Litestar: a generator dependency (``Provide``) yielding a session of the `Database`, opened by the app's
    lifespan, ends it when the handler returns, before the response is sent: committed, rolled back when the
    handler raises, a failed COMMIT answered 500; the ASGI middleware (``DefineMiddleware``) does the same for
    every request, by the response's status (a 409 commits, as ``commit_on`` says by default)."""
    from litestar import Litestar, post
    from litestar.di import NamedDependency, Provide
    from litestar.exceptions import HTTPException
    from litestar.middleware import DefineMiddleware
    from litestar.params import FromPath
    from litestar.testing import TestClient

    from pgdecor.asgi import SessionMiddleware

    pg_exec(DEFERRED_HITS)
    db = Database(pg_dsn, max_size=2)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with db:
            yield

    async def db_session() -> AsyncIterator[Session]:
        async with db.session() as session:
            yield session

    async def write(path: str) -> dict[str, str]:
        await ahit(path)
        if path.endswith("twice"):
            await ahit(path)
        if path.endswith("conflict"):
            raise HTTPException(status_code=409)
        return {"path": path}

    @post("/{path:str}", status_code=200)
    async def by_dependency(path: FromPath[str], session: NamedDependency[Session]) -> dict[str, str]:
        return await write(path)

    @post("/mw/{path:str}", status_code=200)
    async def by_middleware(path: FromPath[str]) -> dict[str, str]:
        return await write(f"mw-{path}")

    deps = Litestar([by_dependency], lifespan=[lifespan], dependencies={"session": Provide(db_session)})
    # Litestar types an ASGI scope as TypedDicts, where the middleware takes any mutable mapping, as ASGI says.
    middleware = [DefineMiddleware(SessionMiddleware, source=db)]  # type: ignore[arg-type]
    mw = Litestar([by_middleware], lifespan=[lifespan], middleware=middleware)
    for app, prefix in [(deps, ""), (mw, "/mw")]:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.post(f"{prefix}/kept").status_code == 200
            assert client.post(f"{prefix}/conflict").status_code == 409
            assert client.post(f"{prefix}/twice").status_code == 500
    assert stored_hits(pg_dsn) == ["kept", "mw-conflict", "mw-kept"]  # the middleware commits below 500
