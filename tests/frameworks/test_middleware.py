"""The WSGI and ASGI middleware: each request's session commits exactly when its response is a success, before
the client can see the response complete, and rolls back otherwise.

The apps are real Flask and FastAPI apps driven through their WSGI/ASGI interface as a server does, so that each
step of a response can be looked at; `test_http_servers.py` runs the same set-ups under gunicorn and uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, MutableMapping
from typing import Any

import anyio
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from flask import Flask, Response

from pgdecor import ArgumentError, Database, NoSessionError, query, transaction
from pgdecor.asgi import SessionMiddleware as ASGIMiddleware
from pgdecor.wsgi import SessionMiddleware as WSGIMiddleware
from tests.usercode.userdb import User, aadd_user, add_user, aget_user, get_user


@query("SELECT pg_sleep(%(seconds)s)")
async def asleep(seconds: float) -> None: ...


@query("INSERT INTO deferred VALUES (1), (1)")
def break_at_commit() -> None: ...


@query("INSERT INTO deferred VALUES (1), (1)")
async def abreak_at_commit() -> None: ...


DEFERRED = "CREATE TABLE deferred (k int, CONSTRAINT once UNIQUE (k) DEFERRABLE INITIALLY DEFERRED)"


def outside_any_session() -> bool:
    """Whether no sync session is open in this context: a savepoint then has nowhere to go."""
    try:
        with transaction():
            pass
    except NoSessionError as err:
        return "outside any session" in str(err)
    return False


async def outside_any_async_session() -> bool:
    try:
        async with transaction():
            pass
    except NoSessionError as err:
        return "outside any session" in str(err)
    return False


def visible(dsn: str, user_id: int) -> bool:
    """Whether another connection sees the user: whether the request's write is committed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM users WHERE id = %s", [user_id]).fetchone() is not None


# -- WSGI ------------------------------------------------------------------------------------------------------


class Served:
    """What a WSGI server saw of one response."""

    def __init__(self) -> None:
        self.status = ""
        self.chunks: list[bytes] = []
        self.error: BaseException | None = None


def serve(
    app: Callable[..., Iterable[bytes]],
    path: str = "/",
    *,
    chunks: int | None = None,
    on_chunk: Callable[[bytes], None] | None = None,
) -> Served:
    """Serve one request as a WSGI server does (stopping after *chunks* chunks, as when the client goes away)."""
    served = Served()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        served.status = status
        return served.chunks.append

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "test", "SERVER_PORT": "80",
               "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": None}  # fmt: skip
    result = app(environ, start_response)
    try:
        for chunk in result:
            if on_chunk is not None:
                on_chunk(chunk)
            served.chunks.append(chunk)
            if chunks is not None and len(served.chunks) == chunks:
                break
    except Exception as err:  # noqa: BLE001 - what the server would turn into a 500 or an aborted body
        served.error = err
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return served


def flask(db: Database, **middleware: Any) -> Flask:
    app = Flask(__name__)
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, db, **middleware)  # type: ignore[method-assign]

    @app.get("/stream")
    def stream() -> Response:
        add_user(20, "wsgi")

        def body() -> Iterator[bytes]:
            yield b"a"
            user = get_user(20)  # the body is produced inside the request's session
            assert user is not None
            yield user.name.encode()

        return Response(body())

    @app.get("/raise")
    def fail() -> str:
        add_user(21, "raised")
        raise RuntimeError

    @app.get("/conflict/<int:user_id>")
    def conflict(user_id: int) -> tuple[str, int]:
        add_user(user_id, "conflict")
        return "no", 409

    @app.get("/deferred")
    def deferred() -> str:
        add_user(23, "deferred")
        break_at_commit()
        return "yes"

    @app.get("/caught")
    def caught() -> str:
        add_user(24, "caught")
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            add_user(24, "again")
        return "yes"

    @app.get("/long")
    def long() -> Response:
        add_user(25, "long")
        return Response(b"x" for _ in range(10))

    return app


def test_wsgi_commits_before_the_last_chunk_reaches_the_server(users: str) -> None:
    """A streaming body reads inside the session, and the write is committed when the last chunk is handed on."""
    seen: list[bool] = []
    with Database(users, max_size=1) as db:
        served = serve(flask(db), "/stream", on_chunk=lambda _: seen.append(visible(users, 20)))
        assert (served.status, served.chunks, served.error) == ("200 OK", [b"a", b"wsgi"], None)
        assert seen == [False, True]  # committed after the first chunk was handed on, before the last
        assert outside_any_session()  # the request's session never leaked into the server's context
        assert db.counters.as_dict() == {
            "borrowed": 1,
            "released": 1,
            "committed": 1,
            "rolled_back": 0,
            "commit_unknown": 0,
            "leaked": 0,
        }


def test_wsgi_error_response_from_flask_rolls_back(users: str) -> None:
    """Flask turns the handler's exception into a 500 before the middleware sees it: the status rolls back."""
    with Database(users, max_size=1) as db:
        served = serve(flask(db), "/raise")
        assert served.status.startswith("500")
        assert not visible(users, 21)
        assert db.counters.rolled_back == 1


def test_wsgi_commit_on_decides_which_statuses_commit(users: str) -> None:
    """By default a 409 commits; with ``commit_on=lambda status: status < 400`` it rolls back."""
    with Database(users, max_size=1) as db:
        assert serve(flask(db), "/conflict/22").status.startswith("409")
        assert visible(users, 22)
        assert serve(flask(db, commit_on=lambda status: status < 400), "/conflict/27").status.startswith("409")
        assert not visible(users, 27)
        assert db.counters.as_dict()["rolled_back"] == 1


def test_wsgi_failed_commit_fails_the_response(users: str, pg_exec: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A COMMIT that fails (a deferred constraint) fails the response before its body is handed on, and is logged
    with the request."""
    pg_exec(DEFERRED)
    with Database(users, max_size=1) as db, caplog.at_level(logging.ERROR, "pgdecor"):
        served = serve(flask(db), "/deferred")
        assert isinstance(served.error, psycopg.errors.UniqueViolation)
        assert served.chunks == []  # the server got nothing to send: it answers 500
        assert "GET /deferred failed to commit" in caplog.text
        assert not visible(users, 23)
        assert db.counters.committed == 0


def test_wsgi_caught_database_error_fails_the_response(users: str) -> None:
    """A handler that swallows a database error answers 200, but the session cannot commit: the response fails."""
    with Database(users, max_size=1) as db:
        served = serve(flask(db), "/caught")
        assert type(served.error).__name__ == "RolledBackError"
        assert served.chunks == []
        assert not visible(users, 24)


def test_wsgi_client_going_away_rolls_back(users: str) -> None:
    """The server closes the response before its end (the client left): the write is undone."""
    with Database(users, max_size=1) as db:
        assert serve(flask(db), "/long", chunks=2).chunks == [b"x", b"x"]
        assert not visible(users, 25)
        assert db.counters.as_dict()["rolled_back"] == 1


def test_wsgi_error_while_iterating_rolls_back(users: str) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [])
        add_user(26, "half")
        yield b"a"
        raise RuntimeError

    with Database(users, max_size=1) as db:
        assert isinstance(serve(WSGIMiddleware(app, db)).error, RuntimeError)
        assert not visible(users, 26)


def test_a_commit_policy_that_fails_still_ends_the_session_rolled_back(users: str) -> None:
    """``commit_on`` that raises: the response fails, and the session is rolled back and its connection given back,
    not left for the leak guard."""

    def policy(status: int) -> bool:
        raise ZeroDivisionError(status)

    with Database(users, max_size=1) as db:
        served = serve(flask(db, commit_on=policy), "/conflict/28")
        assert isinstance(served.error, ZeroDivisionError)
        assert not visible(users, 28)
        assert db.counters.as_dict() == {
            "borrowed": 1,
            "released": 1,
            "committed": 0,
            "rolled_back": 1,
            "commit_unknown": 0,
            "leaked": 0,
        }


def test_middleware_rejects_a_commit_policy_that_is_not_one() -> None:
    with pytest.raises(ArgumentError, match=r"commit_on=.*not int 42"):
        WSGIMiddleware(lambda *_: [], "postgresql:///app", commit_on=42)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match=r"commit_on=.*not str"):
        ASGIMiddleware(lambda *_: None, "postgresql:///app", commit_on="yes")  # type: ignore[arg-type]


def test_middleware_rejects_a_source_that_is_not_one() -> None:
    """A wrong source fails when the middleware is built, not at the first request."""
    with pytest.raises(ArgumentError, match="not int 42"):
        WSGIMiddleware(lambda *_: [], 42)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="not NoneType"):
        ASGIMiddleware(lambda *_: None, None)  # type: ignore[arg-type]


# -- ASGI ------------------------------------------------------------------------------------------------------


class Client:
    """An ASGI server's side of one request: a receive that gives the request, then waits (or says the client
    left), and a send that records the messages."""

    def __init__(
        self, *, leaves: bool = False, on_send: Callable[[MutableMapping[str, Any]], None] | None = None
    ) -> None:
        self.messages: list[MutableMapping[str, Any]] = []
        self._request = True
        self.gone = asyncio.Event()
        if leaves:
            self.gone.set()
        self._on_send = on_send

    async def receive(self) -> MutableMapping[str, Any]:
        if self._request:
            self._request = False
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if self._on_send is not None:
            self._on_send(message)
        self.messages.append(message)

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.messages if m["type"] == "http.response.start"), None)


async def call(app: Any, path: str, client: Client | None = None) -> Client:
    client = client or Client()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "path": path,
             "raw_path": path.encode(), "query_string": b"", "headers": [], "scheme": "http", "root_path": ""}  # fmt: skip
    with contextlib.suppress(Exception):  # a server logs it; the messages say what the client got
        await app(scope, client.receive, client.send)
    return client


def fastapi(db: Database, **middleware: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(ASGIMiddleware, source=db, **middleware)

    @app.get("/status")
    async def status() -> Any:
        await aadd_user(30, "status")
        return JSONResponse({"error": "refused"}, status_code=503)

    @app.get("/deferred")
    async def deferred() -> Any:
        await aadd_user(31, "deferred")
        await abreak_at_commit()
        return {"ok": True}

    @app.get("/stream")
    async def stream() -> Any:
        await aadd_user(32, "stream")

        async def body() -> Any:
            yield b"a"
            yield b"b"

        return StreamingResponse(body())

    @app.get("/ok")
    async def ok() -> Any:
        await aadd_user(33, "ok")
        return {"ok": True}

    return app


def test_asgi_session_ends_at_the_last_body_message(users: str) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await aadd_user(23, "asgi")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        seen["during"] = seen["db"].apool.get_stats()["pool_available"]
        await send({"type": "http.response.body", "body": b"b"})
        seen["after"] = seen["db"].apool.get_stats()["pool_available"]
        with pytest.raises(NoSessionError, match="has ended"):
            await aget_user(23)  # work after the response needs a session of its own

    def on_send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            seen["at_last_message"] = seen["db"].apool.get_stats()["pool_available"]  # committed before

    async def main() -> None:
        async with Database(users, min_size=1, max_size=1) as db:
            seen["db"] = db
            client = await call(ASGIMiddleware(app, db), "/", Client(on_send=on_send))
            assert [m["type"] for m in client.messages][-1] == "http.response.body"
            async with db.session():
                assert await aget_user(23) == User(23, "asgi", None)

    asyncio.run(main())
    # the connection went back (committed) before the server got the last message, and before the app returned
    assert (seen["during"], seen["at_last_message"], seen["after"]) == (0, 1, 1)


def test_asgi_error_status_rolls_back_and_commit_on_decides(users: str) -> None:
    """A 503 the handler answers itself rolls back; ``commit_on`` can accept it."""

    async def main() -> None:
        async with Database(users, max_size=1) as db:
            assert (await call(fastapi(db), "/status")).status == 503
            assert not visible(users, 30)
            assert (await call(fastapi(db, commit_on=lambda _status: True), "/status")).status == 503
            assert visible(users, 30)

    asyncio.run(main())


def test_asgi_failed_commit_is_answered_500(users: str, pg_exec: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The response's start is held until its commit: a failed COMMIT becomes a 500, never a 200."""
    pg_exec(DEFERRED)

    async def main() -> None:
        async with Database(users, max_size=1) as db:
            with caplog.at_level(logging.ERROR, "pgdecor"):
                client = await call(fastapi(db), "/deferred")
            assert client.status == 500
            assert "GET /deferred failed to commit" in caplog.text
            assert not visible(users, 31)

    asyncio.run(main())


def test_asgi_client_gone_before_the_end_rolls_back(users: str) -> None:
    """A client that left before the last body message: the write is undone (for one the app never asked about,
    too)."""

    async def main() -> None:
        async with Database(users, max_size=1) as db:
            await call(fastapi(db), "/ok", Client(leaves=True))
            assert not visible(users, 33)
            await call(fastapi(db), "/stream", Client(leaves=True))
            assert not visible(users, 32)
            assert (await call(fastapi(db), "/ok")).status == 200
            assert visible(users, 33)
            assert db.counters.as_dict() == {"borrowed": 3, "released": 3, "committed": 1, "rolled_back": 2, "commit_unknown": 0,
                                             "leaked": 0}  # fmt: skip

    asyncio.run(main())


def test_asgi_app_returning_without_completing_its_response_rolls_back(users: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            assert await outside_any_async_session()  # no session outside HTTP requests
            return
        await aadd_user(34, "half")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})

    async def main() -> None:
        async with Database(users, max_size=1) as db:
            await ASGIMiddleware(app, db)({"type": "lifespan"}, Client().receive, Client().send)
            await call(ASGIMiddleware(app, db), "/")
            assert not visible(users, 34)
            assert db.counters.rolled_back == 1

    asyncio.run(main())


def test_asgi_handler_error_rolls_back(users: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await aadd_user(35, "boom")
        raise RuntimeError

    async def main() -> None:
        async with Database(users, max_size=1) as db:
            with pytest.raises(RuntimeError):
                await ASGIMiddleware(app, db)({"type": "http", "path": "/"}, Client().receive, Client().send)
            assert db.counters.rolled_back == 1
            async with db.session():
                assert await aget_user(35) is None

    asyncio.run(main())


async def until_sleeping(admin: psycopg.Connection[Any], dsn: str) -> None:
    """Until a backend of the test's schema (its application_name) runs a pg_sleep() (bounded: fails rather than
    hangs)."""
    name = psycopg.conninfo.conninfo_to_dict(dsn)["application_name"]
    sleeping = "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND wait_event = 'PgSleep'"
    for _ in range(2000):
        if admin.execute(sleeping, [name]).fetchone():
            return
        await asyncio.sleep(0.005)
    pytest.fail("the request's statement never started")


@pytest.mark.parametrize("repeated", [False, True], ids=["first call", "repeated call"])
def test_cancelled_statement_gives_the_connection_back_usable(
    users: str, admin: psycopg.Connection[Any], repeated: bool
) -> None:
    """A request cancelled mid-statement by an anyio cancel scope (which cancels again at every await, as
    Starlette's do): the statement is stopped, the session rolls back, and the pool keeps its one connection."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await aadd_user(36, "cancelled")
        await asleep(10)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def main() -> None:
        async with Database(users, min_size=1, max_size=1) as db:
            if repeated:  # the statement is known: the call takes the prepared statement's path
                async with db.session():
                    for _ in range(3):
                        await asleep(0)
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call, ASGIMiddleware(app, db), "/")
                    await until_sleeping(admin, users)
                    scope.cancel()
            async with db.session():
                assert await aget_user(36) is None
            stats = db.apool.get_stats()
            assert stats.get("returns_bad", 0) == 0
            assert stats.get("connections_num") == 1  # never replaced

    asyncio.run(main())
    assert not visible(users, 36)


@pytest.mark.slow
@pytest.mark.parametrize("turns", range(16))
def test_request_cancelled_at_any_point_of_its_borrow_keeps_the_pools_connection(users: str, turns: int) -> None:
    """A request cancelled by an anyio cancel scope after *turns* turns of the event loop (while its connection is
    checked, its transaction begun, or its statement sent): the pool keeps its one connection, good."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await aadd_user(37, "cancelled early")
        await asleep(10)

    async def main() -> None:
        async with Database(users, min_size=1, max_size=1) as db:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call, ASGIMiddleware(app, db), "/")
                    for _ in range(turns):
                        await asyncio.sleep(0)
                    scope.cancel()
            async with db.session():
                assert await aget_user(37) is None
            stats = db.apool.get_stats()
            assert (stats.get("returns_bad", 0), stats.get("connections_num")) == (0, 1)

    asyncio.run(main())


@query("SELECT i FROM generate_series(1, 1001) AS i")
def anumbers() -> AsyncIterator[int]: ...  # its second fetch is short: over before a stop request could reach it


#: Streams cancelled in turn: a stop request that came late would cancel one of the calls between them.
ROUNDS = 20


def test_stream_cancelled_in_its_fetch_never_stops_a_later_statement(users: str) -> None:
    """A stream whose reading is cancelled by an anyio cancel scope (which cancels again at every await) while its
    next fetch runs: the request to stop that fetch reaches the server before the connection serves anything else,
    so that it never cancels a later statement (another request's, on the same connection)."""

    async def main() -> None:
        async with Database(users, min_size=1, max_size=1) as db:
            for _ in range(ROUNDS):
                with anyio.CancelScope() as scope:
                    async with db.session():
                        async for i in anumbers():
                            if i == 1000:  # the last row of the first batch: the next one is fetched
                                scope.cancel()
                async with db.session():
                    await asleep(0.02)  # long enough for a stop request that came late to reach it
                    assert await aget_user(1) == User(1, "ann", "ann@example.org")
            assert db.apool.get_stats().get("connections_num") == 1

    asyncio.run(main())
