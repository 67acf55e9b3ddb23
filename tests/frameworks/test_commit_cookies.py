"""The middleware's commit cookie, on a real streaming standby: a request that wrote answers with its session's
commit token in a cookie, and the client's next request reads its write; under Flask (WSGI) and FastAPI (ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from pgdecor import ArgumentError, Database
from tests.usercode.replica_notes import aadd_note, add_note, anote, aon_standby, note, on_standby

# Each test runs against a streaming standby, started for the module.
pytestmark = pytest.mark.slow


def test_the_middleware_carry_the_token_in_a_cookie(servers: tuple[str, str], paused: psycopg.Connection[Any]) -> None:
    """Flask (WSGI) and FastAPI (ASGI) with ``commit_cookie``: a request that wrote answers with the token in a
    cookie, and the client's next request reads its write (from the primary, the standby's replay being paused);
    another client, without the cookie, reads the standby; a cookie that is not a token is ignored, not an error."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from flask import Flask

    from pgdecor.asgi import SessionMiddleware as ASGISessions
    from pgdecor.wsgi import SessionMiddleware as WSGISessions

    primary, standby = servers
    with Database(primary, replica=standby, replica_wait=0.05) as db:
        flask = Flask(__name__)
        flask.wsgi_app = WSGISessions(flask.wsgi_app, db, commit_cookie="pgdecor-lsn")  # type: ignore[method-assign]

        @flask.post("/notes/<int:id>")
        def write(id: int) -> dict[str, bool]:
            add_note(id, "from flask")
            return {"ok": True}

        @flask.get("/notes/<int:id>")
        def read(id: int) -> dict[str, Any]:
            return {"body": note(id), "standby": on_standby()}

        writer = flask.test_client()
        answer = writer.post("/notes/10")
        assert "pgdecor-lsn=" in answer.headers["Set-Cookie"]
        assert writer.get("/notes/10").json == {"body": "from flask", "standby": False}
        assert flask.test_client().get("/notes/10").json == {"body": None, "standby": True}
        tampered = flask.test_client()
        tampered.set_cookie("pgdecor-lsn", "0/1; x=y")
        assert tampered.get("/notes/10").json == {"body": None, "standby": True}
        assert "Secure" not in answer.headers["Set-Cookie"]  # the request came over plain HTTP
        assert "; Secure" in flask.test_client().post("/notes/12", base_url="https://localhost").headers["Set-Cookie"]

    async_db = Database(primary, replica=standby, replica_wait=0.05)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with async_db:
            yield

    api = FastAPI(lifespan=lifespan)
    api.add_middleware(ASGISessions, source=async_db, commit_cookie="pgdecor-lsn")

    @api.post("/notes/{id}")
    async def awrite(id: int) -> dict[str, bool]:
        await aadd_note(id, "from fastapi")
        return {"ok": True}

    @api.get("/notes/{id}")
    async def aread(id: int) -> dict[str, Any]:
        return {"body": await anote(id), "standby": await aon_standby()}

    with TestClient(api) as client, TestClient(api) as stranger, TestClient(api, base_url="https://h") as secure:
        assert "; Secure" in secure.post("/notes/13").headers["set-cookie"]
        assert "Secure" not in client.post("/notes/11").headers["set-cookie"]
        assert client.get("/notes/11").json() == {"body": "from fastapi", "standby": False}
        assert stranger.get("/notes/11").json() == {"body": None, "standby": True}


def test_a_commit_cookie_that_is_not_a_cookie_name_is_refused(servers: tuple[str, str]) -> None:
    """Either middleware refuses, when it is made, a ``commit_cookie`` that is not a cookie's name."""
    from pgdecor.asgi import SessionMiddleware as ASGISessions
    from pgdecor.wsgi import SessionMiddleware as WSGISessions

    primary = servers[0]
    for middleware in (WSGISessions, ASGISessions):
        with pytest.raises(ArgumentError, match=r"commit_cookie='a b'\): give a cookie name"):
            middleware(lambda *_: None, primary, commit_cookie="a b")  # type: ignore[arg-type]
