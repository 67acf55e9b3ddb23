"""The WSGI and ASGI middleware end each request's session when the response is finished."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

import pytest
from userdb import User, aadd_user, add_user, aget_user, count_users, get_user

from pgdecor import Database, NoSessionError
from pgdecor._session import current
from pgdecor.asgi import SessionMiddleware as ASGIMiddleware
from pgdecor.wsgi import SessionMiddleware as WSGIMiddleware


def serve(app: Callable[..., Iterable[bytes]], *, chunks: int | None = None) -> list[bytes]:
    """Call a WSGI app as a server does; stop after *chunks* chunks (a client going away)."""
    result = app({"PATH_INFO": "/"}, lambda *_: None)
    out: list[bytes] = []
    try:
        for chunk in result:
            out.append(chunk)
            if chunks is not None and len(out) == chunks:
                break
    finally:
        result.close()  # type: ignore[attr-defined]
    return out


def test_wsgi_streaming_body_reads_in_the_session_which_commits_after_close(users: str) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        add_user(20, "wsgi")
        yield b"a"
        user = get_user(20)  # the body is produced inside the request's session
        assert user is not None
        yield user.name.encode()

    with Database(users, max_size=1) as db:
        assert serve(WSGIMiddleware(app, db)) == [b"a", b"wsgi"]
        assert current() is None  # the request's session never leaked into the server's context
        assert db.counters.committed == 1
        with db.session():
            assert get_user(20) == User(20, "wsgi", None)


def test_wsgi_error_while_iterating_rolls_back(users: str) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        add_user(21, "half")
        yield b"a"
        raise RuntimeError

    with Database(users, max_size=1) as db:
        with pytest.raises(RuntimeError):
            serve(WSGIMiddleware(app, db))
        with pytest.raises(ValueError, match="app"):
            serve(WSGIMiddleware(lambda *_: (_ for _ in ()).throw(ValueError("app")), db))
        assert db.counters.rolled_back == 1  # the second app raised before borrowing anything
        with db.session():
            assert count_users() == 3


def test_wsgi_client_going_away_still_ends_the_session(users: str) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        add_user(22, "gone")
        yield from (b"x" for _ in range(10))

    with Database(users, max_size=1) as db:
        assert serve(WSGIMiddleware(app, db), chunks=2) == [b"x", b"x"]
        assert db.counters.borrowed == db.counters.released == 1


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

    async def main() -> None:
        async with Database(users, min_size=1, max_size=1) as db:
            seen["db"] = db
            messages: list[MutableMapping[str, Any]] = []

            async def receive() -> MutableMapping[str, Any]:
                return {"type": "http.request"}

            async def send(message: MutableMapping[str, Any]) -> None:
                messages.append(message)
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    seen["at_last_message"] = db.apool.get_stats()["pool_available"]  # committed before

            await ASGIMiddleware(app, db)({"type": "http", "path": "/"}, receive, send)
            assert [m["type"] for m in messages][-1] == "http.response.body"
            async with db.session():
                assert await aget_user(23) == User(23, "asgi", None)

    asyncio.run(main())
    # the connection went back (committed) before the server got the last message, and before the app returned
    assert (seen["during"], seen["at_last_message"], seen["after"]) == (0, 1, 1)


def test_asgi_handler_error_rolls_back_and_other_scopes_pass_through(users: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            assert current() is None  # no session outside HTTP requests
            return
        await aadd_user(24, "boom")
        raise RuntimeError

    async def main() -> None:
        async with Database(users, max_size=1) as db:
            middleware = ASGIMiddleware(app, db)

            async def receive() -> MutableMapping[str, Any]:
                return {"type": "lifespan.startup"}

            async def send(message: MutableMapping[str, Any]) -> None:
                pass

            await middleware({"type": "lifespan"}, receive, send)
            with pytest.raises(RuntimeError):
                await middleware({"type": "http", "path": "/"}, receive, send)
            assert db.counters.rolled_back == 1
            async with db.session():
                assert await aget_user(24) is None

    asyncio.run(main())
