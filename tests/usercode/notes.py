"""A notes service with a read replica and a commit cookie, as a Flask app (for gunicorn) and a FastAPI app (for
uvicorn), for the tests of what hostile clients can do with the cookie. Both read ``NOTES_DSN``,
``NOTES_REPLICA`` and ``NOTES_SECRET``, and serve:

- ``POST /notes/ID``: write note ``ID``, answering with the commit cookie;
- ``GET /notes/ID``: read it with a readonly stub (from the replica, once it has replayed the client's writes);
- ``GET /ping``: answer without touching the database;
- ``GET /counters``: the database's counters.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pgdecor import Database, query

SCHEMA = "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)"
COOKIE = "pgdecor-lsn"
COUNTED = ("tokens_rejected", "replica_waits", "replica_fallbacks", "replica_unreachable")


@query("INSERT INTO notes VALUES (%(id)s, 'note') ON CONFLICT (id) DO UPDATE SET body = 'again'")
def write_note(id: int) -> None: ...


@query("SELECT body FROM notes WHERE id = %(id)s", readonly=True)
def read_note(id: int) -> str | None: ...


@query("INSERT INTO notes VALUES (%(id)s, 'note') ON CONFLICT (id) DO UPDATE SET body = 'again'")
async def awrite_note(id: int) -> None: ...


@query("SELECT body FROM notes WHERE id = %(id)s", readonly=True)
async def aread_note(id: int) -> str | None: ...


def _database() -> Database:
    return Database(
        os.environ["NOTES_DSN"],
        replica=os.environ["NOTES_REPLICA"],
        secret=os.environ["NOTES_SECRET"],
        max_size=4,
        timeout=10,
        replica_wait=1.0,
    )


def flask_app() -> Any:
    """The Flask app: ``gunicorn 'notes:flask_app()'``."""
    from flask import Flask

    from pgdecor.wsgi import SessionMiddleware

    app = Flask(__name__)
    db = _database().__enter__()
    app.wsgi_app = SessionMiddleware(app.wsgi_app, db, commit_cookie=COOKIE)  # type: ignore[method-assign]

    @app.post("/notes/<int:id>")
    def write(id: int) -> Any:
        write_note(id)
        return {"ok": True}

    @app.get("/notes/<int:id>")
    def read(id: int) -> Any:
        return {"body": read_note(id)}

    @app.get("/ping")
    def ping() -> Any:
        return {"ok": True}

    @app.get("/counters")
    def counters() -> Any:
        return {name: getattr(db.counters, name) for name in COUNTED}

    return app


def fastapi_app() -> Any:
    """The FastAPI app: ``uvicorn --factory notes:fastapi_app``."""
    from fastapi import FastAPI

    from pgdecor.asgi import SessionMiddleware

    db = _database()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with db:
            yield

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(SessionMiddleware, source=db, commit_cookie=COOKIE)

    @app.post("/notes/{id}")
    async def write(id: int) -> Any:
        await awrite_note(id)
        return {"ok": True}

    @app.get("/notes/{id}")
    async def read(id: int) -> Any:
        return {"body": await aread_note(id)}

    @app.get("/ping")
    async def ping() -> Any:
        return {"ok": True}

    @app.get("/counters")
    async def counters() -> Any:
        return {name: getattr(db.counters, name) for name in COUNTED}

    return app
