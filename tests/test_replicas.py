"""Replicas that read a session's writes across requests, on a real streaming standby: a session given the
commit token of one that wrote reads from the standby only once it has replayed that far, else from the
primary; without a token it reads the standby as it is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from pgdecor import ArgumentError, Database, query, session
from pgdecor.testing import TemporaryServer


@query("INSERT INTO notes VALUES (%(id)s, %(body)s)")
def add_note(id: int, body: str) -> None: ...


@query("SELECT body FROM notes WHERE id = %(id)s", readonly=True)
def note(id: int) -> str | None: ...


@query("SELECT pg_is_in_recovery()", readonly=True)
def on_standby() -> bool: ...


@query("SELECT body FROM notes WHERE id = %(id)s", readonly=True)
async def anote(id: int) -> str | None: ...


@query("SELECT pg_is_in_recovery()", readonly=True)
async def aon_standby() -> bool: ...


@query("INSERT INTO notes VALUES (%(id)s, %(body)s)")
async def aadd_note(id: int, body: str) -> None: ...


def replayed(standby: str, lsn: str) -> None:
    """Wait until *standby* has replayed past *lsn* (setting up: what the tests assert is pgdecor's waiting)."""
    with psycopg.connect(standby, autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]).fetchone() != (True,):
            assert time.monotonic() < deadline, "the standby does not replay"
            time.sleep(0.01)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    """A primary and its streaming standby, with the notes table replayed on both."""
    with TemporaryServer() as primary, primary.standby() as standby:
        with psycopg.connect(primary.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        replayed(standby.dsn, row[0])
        yield primary.dsn, standby.dsn


@pytest.fixture
def paused(servers: tuple[str, str]) -> Iterator[psycopg.Connection[Any]]:
    """The standby with its replay paused (resumed after the test)."""
    with psycopg.connect(servers[1], autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")


def test_a_session_given_a_fresh_token_never_reads_stale_data(
    servers: tuple[str, str], paused: psycopg.Connection[Any]
) -> None:
    """Replay paused: a session with the writer's token waits for the standby (up to ``replica_wait``), then reads
    from the primary and sees the write; without the token, a session reads the standby as it is. Once replay
    resumes, a session with the token reads the write from the standby."""
    primary, standby = servers
    with Database(primary, replica=standby, replica_wait=0.1) as db:
        with db.session() as writer:
            add_note(1, "hello")
        token = writer.commit_token
        assert token is not None
        with db.session():
            assert (on_standby(), note(1)) == (True, None)  # stale, as a replica may be: no token given
        with db.session(after=token):
            assert (on_standby(), note(1)) == (False, "hello")
        assert (db.counters.replica_waits, db.counters.replica_fallbacks) == (1, 1)
        paused.execute("SELECT pg_wal_replay_resume()")
        replayed(standby, token)
        with db.session(after=token):
            assert (on_standby(), note(1)) == (True, "hello")
        assert db.counters.replica_fallbacks == 1


def test_async_sessions_read_their_writes_the_same_way(
    servers: tuple[str, str], paused: psycopg.Connection[Any]
) -> None:
    primary, standby = servers

    async def scenario() -> list[Any]:
        async with Database(primary, replica=standby, replica_wait=0.1) as db:
            async with db.session() as writer:
                await aadd_note(2, "async hello")
            token = writer.commit_token
            async with db.session():
                stale = (await aon_standby(), await anote(2))
            async with db.session(after=token):
                fresh = (await aon_standby(), await anote(2))
            return [stale, fresh, db.counters.replica_fallbacks]

    assert asyncio.run(scenario()) == [(True, None), (False, "async hello"), 1]


def test_a_token_is_handed_out_only_where_there_is_a_replica_and_checked_when_given(servers: tuple[str, str]) -> None:
    """A session on a database without a replica has no token to give; a token that is not one (a tampered
    cookie) is an `ArgumentError` before anything connects."""
    primary, standby = servers
    with Database(primary) as db:
        with db.session() as s:
            add_note(3, "no replica")
        assert s.commit_token is None
        for bad in ("nonsense", "0/3000148; DROP TABLE notes", 12):
            with pytest.raises(ArgumentError, match=r"is not a token a session handed out"):
                db.session(after=bad)  # type: ignore[arg-type]
    with session(primary, replica=standby) as reader:
        assert note(3) in (None, "no replica")  # from the standby, however far it is
    assert reader.commit_token is None  # it wrote nothing on the primary: it never used it


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

    with TestClient(api) as client, TestClient(api) as stranger:
        assert "pgdecor-lsn=" in client.post("/notes/11").headers["set-cookie"]
        assert client.get("/notes/11").json() == {"body": "from fastapi", "standby": False}
        assert stranger.get("/notes/11").json() == {"body": None, "standby": True}


def test_several_hosts_with_load_balancing_spread_sessions_where_libpq_can(servers: tuple[str, str]) -> None:
    """``load_balance_hosts=random`` (libpq 16 and later) spreads the sessions' new connections over the hosts of
    one connection string; where the libpq is older, the string is refused at once, naming the option, rather
    than at the first call."""
    hosts = [str(psycopg.conninfo.conninfo_to_dict(dsn)["host"]) for dsn in servers]
    # Written out: psycopg's make_conninfo would itself refuse the option with an older libpq.
    spread = f"host={','.join(hosts)} port=5432,5432 user=postgres dbname=postgres load_balance_hosts=random"
    if psycopg.pq.version() < 160000:
        with pytest.raises(ArgumentError, match=r"load_balance_hosts"):
            Database(spread)
        return
    seen = set()
    for _ in range(40):  # each session on a conninfo string opens a connection of its own
        with session(spread):
            seen.add(on_standby())
    assert seen == {True, False}


def test_a_serializable_session_reads_from_the_primary(servers: tuple[str, str]) -> None:
    """A standby refuses SERIALIZABLE transactions: such a session's readonly stubs run on the primary; at
    REPEATABLE READ they run on the standby."""
    primary, standby = servers
    with Database(primary, replica=standby) as db:
        with db.session(isolation="serializable"):
            assert on_standby() is False
        with db.session(isolation="repeatable read"):
            assert on_standby() is True


def test_a_commit_cookie_that_is_not_a_cookie_name_is_refused(servers: tuple[str, str]) -> None:
    from pgdecor.asgi import SessionMiddleware as ASGISessions
    from pgdecor.wsgi import SessionMiddleware as WSGISessions

    primary = servers[0]
    for middleware in (WSGISessions, ASGISessions):
        with pytest.raises(ArgumentError, match=r"commit_cookie='a b'\): give a cookie name"):
            middleware(lambda *_: None, primary, commit_cookie="a b")  # type: ignore[arg-type]
