"""Replicas that read a session's writes across requests, on a real streaming standby: a session given the
commit token of one that wrote reads from the standby only once it has replayed that far, else from the
primary; without a token it reads the standby as it is."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from pgdecor import ArgumentError, Database, query, session
from pgdecor.testing import TemporaryServer

# Each test runs against a streaming standby, started for the module.
pytestmark = pytest.mark.slow


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


def position(primary: str) -> str:
    """The primary's write-ahead log position now."""
    with psycopg.connect(primary, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


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
    """Replay paused: a sync session with the writer's token looks at the standby once (waiting would hold its
    thread) and reads from the primary, seeing the write; without the token, a session reads the standby as it
    is. Once replay resumes, a session with the token reads the write from the standby."""
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
        assert (db.counters.replica_waits, db.counters.replica_fallbacks) == (0, 1)
        paused.execute("SELECT pg_wal_replay_resume()")
        replayed(standby, position(primary))
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
        for bad in ("nonsense", "0/3000148", "FFFFFFFF/FFFFFFFF", "0/3000148; DROP TABLE notes", "A" * 44, 12):
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


def test_a_token_says_nothing_of_the_write_volume(servers: tuple[str, str]) -> None:
    """A token is sealed: 43 URL-safe characters in which the position does not show, different for two sessions
    that committed at the same position."""
    primary, standby = servers
    with Database(primary, replica=standby) as db:
        tokens: set[str] = set()
        for _ in range(2):
            with db.session() as s:
                with db.session():  # nothing written: the position stays
                    pass
                on_standby()
                add_note(900 + len(tokens), "sealed")
            assert s.commit_token is not None
            tokens.add(s.commit_token)
    assert len(tokens) == 2
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) and "/" not in t for t in tokens)


def test_a_forged_or_foreign_token_is_ignored_without_a_wait(
    servers: tuple[str, str], paused: psycopg.Connection[Any]
) -> None:
    """Replay paused: tokens of the right shape that the service did not seal (made up, sealed with another
    secret, or sealed for another cluster with the same secret) are ignored and counted: the session reads the
    standby as if it had none, waiting for nothing."""
    primary, standby = servers
    secret = "a secret of the service, 32 chars"
    with TemporaryServer() as other, Database(other.dsn, replica=other.dsn, secret=secret) as elsewhere:
        with elsewhere.session() as s:
            assert on_standby() is False  # its "replica" is a primary: it has its own writes
            with psycopg.connect(other.dsn, autocommit=True) as conn:
                conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
            add_note(1, "elsewhere")
        foreign = s.commit_token
    with Database(primary, replica=standby, secret="another secret of 32 characters!") as stranger:
        with stranger.session() as s:
            add_note(30, "other key")
        other_key = s.commit_token

    async def scenario(db: Database, token: str) -> tuple[Any, ...]:
        async with db.session(after=token):
            return (await aon_standby(), await anote(30))

    with Database(primary, replica=standby, secret=secret, replica_wait=30) as db:
        for token in ("A" * 43, foreign, other_key):
            assert token is not None
            with db.session(after=token):
                assert (on_standby(), note(30)) == (True, None)
        assert (db.counters.tokens_rejected, db.counters.replica_waits, db.counters.replica_fallbacks) == (3, 0, 0)
    async_db = Database(primary, replica=standby, secret=secret, replica_wait=30)

    async def forged() -> tuple[Any, ...]:
        async with async_db:
            return await scenario(async_db, "B" * 43)

    assert asyncio.run(forged()) == (True, None)  # with a 30 s wait, had it waited the test would time out
    assert (async_db.counters.tokens_rejected, async_db.counters.replica_waits) == (1, 0)


def test_the_tokens_of_one_secret_are_honoured_by_every_database_given_it(
    servers: tuple[str, str], paused: psycopg.Connection[Any]
) -> None:
    """Two processes of a service (two `Database` objects here) given the same secret accept each other's tokens;
    without a secret each has a key of its own, and the other's token is ignored (counted)."""
    primary, standby = servers
    secret = b"0123456789abcdef0123456789abcdef"
    with Database(primary, replica=standby, secret=secret) as one, Database(primary, replica=standby) as keyless:
        with one.session() as s:
            add_note(40, "shared")
        with Database(primary, replica=standby, secret=secret) as two, two.session(after=s.commit_token):
            assert (on_standby(), note(40)) == (False, "shared")
        with keyless.session(after=s.commit_token):
            assert (on_standby(), note(40)) == (True, None)
        assert keyless.counters.tokens_rejected == 1
    with pytest.raises(ArgumentError, match=r"secret=.*16 characters or more"):
        Database(primary, secret="short")


def test_an_async_session_waits_for_its_replica_without_holding_a_connection(
    servers: tuple[str, str], paused: psycopg.Connection[Any]
) -> None:
    """Replay paused: an async session with a fresh token waits for the standby without holding one of its
    connections (the replica pool has one, and another session reads from it meanwhile), and reads the write from
    the standby as soon as replay resumes."""
    primary, standby = servers

    async def scenario() -> list[Any]:
        async with Database(primary, replica=standby, max_size=1, timeout=5, replica_wait=60) as db:
            async with db.session() as writer:
                await aadd_note(50, "awaited")

            async def waiting() -> tuple[Any, ...]:
                async with db.session(after=writer.commit_token):
                    return (await aon_standby(), await anote(50))

            waiter = asyncio.ensure_future(waiting())
            assert db.replica is not None
            for _ in range(2000):  # until the waiter has looked once, and given the replica connection back
                stats = db.replica.apool.get_stats()
                if stats.get("requests_num", 0) >= 1 and stats.get("pool_available", 0) == 1:
                    break
                await asyncio.sleep(0.005)
            else:
                pytest.fail("the waiting session never looked at the standby")
            async with db.session():  # the one replica connection is free while the waiter waits
                meanwhile = (await aon_standby(), await anote(50), waiter.done())
            paused.execute("SELECT pg_wal_replay_resume()")
            return [meanwhile, await waiter, db.counters.replica_waits, db.counters.replica_fallbacks]

    assert asyncio.run(scenario()) == [(True, None, False), (True, "awaited"), 1, 0]


def test_an_unreachable_replica_sends_readonly_work_to_the_primary(caplog: pytest.LogCaptureFixture) -> None:
    """A standby that stops: readonly calls run on the primary within ``replica_timeout``, counted, the outage
    logged once; once the standby is back, they run there again (it is tried every ``health.retry`` seconds)."""
    with (
        TemporaryServer() as own_primary,
        own_primary.standby() as standby,
        Database(own_primary.dsn, replica=standby.dsn, replica_timeout=0.5, timeout=30) as db,
    ):
        assert db.replica is not None
        db.replica.health.retry = 0.2
        with db.session():
            assert on_standby() is True
        standby.crash()
        caplog.set_level(logging.INFO, logger="pgdecor")
        for _ in range(5):
            with db.session():
                assert on_standby() is False
        assert db.counters.replica_unreachable == 5
        down = [r.getMessage() for r in caplog.records if "cannot be reached" in r.getMessage()]
        assert len(down) == 1
        assert standby.dsn not in down[0]
        standby.restart()
        deadline = time.monotonic() + 30
        while True:
            with db.session():
                if on_standby():
                    break
            assert time.monotonic() < deadline, "readonly calls never went back to the standby"
        assert [r.getMessage() for r in caplog.records if "reached again" in r.getMessage()] != []


def test_a_token_beyond_the_primarys_log_is_ignored_without_a_wait(
    servers: tuple[str, str], paused: psycopg.Connection[Any]
) -> None:
    """A token sealed with the service's key for its cluster, but beyond the primary's write-ahead log (as after a
    failover that lost writes, or a restored backup: no replica will ever reach it): an async session asks the
    primary once, and reads the standby as if it had no token, at once (30 s of waiting allowed), counted."""
    primary, standby = servers
    with psycopg.connect(primary) as conn:
        row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    assert row is not None

    async def scenario() -> tuple[Any, ...]:
        async with Database(primary, replica=standby, replica_wait=30) as db:
            token = db.tokens.seal("FF/0", int(row[0]))
            async with db.session(after=token):
                on = await aon_standby()
            return on, db.counters.tokens_rejected, db.counters.replica_waits, db.counters.replica_fallbacks

    assert asyncio.run(scenario()) == (True, 1, 0, 0)
