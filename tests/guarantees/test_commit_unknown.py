"""A COMMIT whose answer is lost: the server holds each COMMIT for a synchronous standby that never comes
(``synchronous_standby_names`` names none that exists), and the test terminates the backend while it waits. The
transaction has committed locally; the client cannot know. pgdecor says the outcome is unknown: a
`CommitUnknownError`, counted apart, never retried, and answered as such by the middleware."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
import pytest

from pgdecor import CommitUnknownError, Database, Retry, query
from pgdecor.testing import TemporaryServer

T = TypeVar("T")

#: Every connection of the service's waits for its COMMIT to reach a standby.
SYNCHRONOUS = "-c synchronous_commit=on"


@query("INSERT INTO orders VALUES (%(id)s)")
def add_order(id: int) -> None: ...


@query("INSERT INTO orders VALUES (%(id)s)")
async def aadd_order(id: int) -> None: ...


@pytest.fixture(scope="module")
def server() -> Iterator[TemporaryServer]:
    """A server of its own whose synchronous COMMITs wait for a standby that does not exist."""
    with TemporaryServer() as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = 'ghost'")
            conn.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 30
        while True:
            with psycopg.connect(server.dsn) as conn:
                if conn.execute("SHOW synchronous_standby_names").fetchone() == ("ghost",):
                    break
            assert time.monotonic() < deadline, "the server did not reload its configuration"
        yield server


def _terminated_in_commit(dsn: str, work: Callable[[], T]) -> T:
    """Run *work* in a thread; once a backend waits for the standby at its COMMIT, terminate it; what *work*
    returned (or raise what it raised)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as err:  # noqa: BLE001 - handed to the test's thread
            outcome.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    with psycopg.connect(dsn, autocommit=True) as admin:
        deadline = time.monotonic() + 30
        while not admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
        ).fetchall():
            assert time.monotonic() < deadline, "no COMMIT waited for the standby"
            time.sleep(0.005)
    thread.join(30)
    assert not thread.is_alive()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]  # type: ignore[no-any-return]


def _stored(dsn: str, id: int) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM orders WHERE id = %s", [id]).fetchone() == (1,)


@pytest.mark.slow
def test_a_commit_whose_answer_is_lost_raises_commit_unknown(server: TemporaryServer) -> None:
    """Sync and async sessions: the backend is terminated while it waits at COMMIT; the session raises
    `CommitUnknownError` (its cause the connection's error, its note naming the session), counted as
    ``commit_unknown`` rather than rolled back; the write is in fact stored."""
    with Database(server.dsn, options=SYNCHRONOUS) as db:

        def write() -> None:
            with db.session():
                add_order(1)

        with pytest.raises(CommitUnknownError) as caught:
            _terminated_in_commit(server.dsn, write)
        assert isinstance(caught.value.__cause__, psycopg.OperationalError)
        assert any("may have committed, or not" in n for n in getattr(caught.value, "__notes__", ()))
        assert db.counters.as_dict() == {
            "borrowed": 1, "released": 1, "committed": 0, "rolled_back": 0, "commit_unknown": 1, "leaked": 0
        }  # fmt: skip
    assert _stored(server.dsn, 1)

    async def awrite() -> None:
        async with Database(server.dsn, options=SYNCHRONOUS) as adb, adb.session():
            await aadd_order(2)

    with pytest.raises(CommitUnknownError):
        _terminated_in_commit(server.dsn, lambda: asyncio.run(awrite()))
    assert _stored(server.dsn, 2)


def test_a_unit_of_work_whose_commit_is_unknown_is_never_run_again(server: TemporaryServer) -> None:
    """`Database.run` with ``connection_lost=True``, which runs a unit again when its connection is lost before
    the COMMIT: a lost COMMIT is not retried (the unit ran once, its write is stored once)."""
    runs = []

    def unit() -> None:
        runs.append(1)
        add_order(3)

    with Database(server.dsn, options=SYNCHRONOUS) as db:
        with pytest.raises(CommitUnknownError):
            _terminated_in_commit(server.dsn, lambda: db.run(unit, retry=Retry(3, connection_lost=True)))
        assert (len(runs), db.counters.retried, db.counters.commit_unknown) == (1, 0, 1)
    assert _stored(server.dsn, 3)


def test_the_middleware_answer_that_the_outcome_is_unknown(
    server: TemporaryServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Flask (WSGI) and FastAPI (ASGI): a request whose COMMIT's answer is lost is answered 500 with a body that
    says the outcome is unknown, and logged as such (ERROR, with the error)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from flask import Flask

    from pgdecor.asgi import SessionMiddleware as ASGISessions
    from pgdecor.wsgi import SessionMiddleware as WSGISessions

    caplog.set_level(logging.ERROR, logger="pgdecor")
    with Database(server.dsn, options=SYNCHRONOUS) as db:
        flask = Flask(__name__)
        flask.wsgi_app = WSGISessions(flask.wsgi_app, db)  # type: ignore[method-assign]

        @flask.post("/orders/<int:id>")
        def order(id: int) -> dict[str, bool]:
            add_order(id)
            return {"ok": True}

        answer = _terminated_in_commit(server.dsn, lambda: flask.test_client().post("/orders/4"))
        assert answer.status_code == 500
        assert b"outcome of this request is unknown" in answer.data
    assert _stored(server.dsn, 4)

    async_db = Database(server.dsn, options=SYNCHRONOUS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with async_db:
            yield

    api = FastAPI(lifespan=lifespan)
    api.add_middleware(ASGISessions, source=async_db)

    @api.post("/orders/{id}")
    async def aorder(id: int) -> dict[str, bool]:
        await aadd_order(id)
        return {"ok": True}

    with TestClient(api) as client:
        response = _terminated_in_commit(server.dsn, lambda: client.post("/orders/5"))
    assert response.status_code == 500
    assert "outcome of this request is unknown" in response.text
    assert _stored(server.dsn, 5)
    logged = [r for r in caplog.records if "whether it committed is unknown" in r.getMessage()]
    assert len(logged) == 2
    assert all(r.exc_info and isinstance(r.exc_info[1], CommitUnknownError) for r in logged)
