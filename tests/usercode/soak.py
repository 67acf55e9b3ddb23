"""Request handlers for soak tests, and in-process WSGI / ASGI servers that drive them as real servers would.

Every request records a hit, then: `/ok` reads a user, `/raise` fails, `/stream` streams users in its body,
`/abandon` starts a stream it never finishes, `/disconnect` is dropped by the client half-way, `/slow` runs
long enough to be cancelled. A hit is committed exactly when its request succeeded.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg

from pgdecor import Database, query
from pgdecor.asgi import Receive, Send
from pgdecor.asgi import SessionMiddleware as ASGIMiddleware
from pgdecor.wsgi import SessionMiddleware as WSGIMiddleware

SCHEMA = """
CREATE TABLE IF NOT EXISTS soak_users (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO soak_users SELECT i, 'user ' || i FROM generate_series(1, 50) i ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS soak_hits (path text NOT NULL);
TRUNCATE soak_hits;
"""

PATHS = ["/ok", "/raise", "/stream", "/ok", "/raise", "/abandon", "/disconnect", "/raise", "/ok"]
FAILING = {"/raise"}
#: Requests whose client never gets the whole response: the handler raises, or the client goes away.
UNANSWERED = {"/raise", "/disconnect"}


class HandlerError(RuntimeError):
    pass


@dataclass
class SoakUser:
    id: int
    name: str


@query("INSERT INTO soak_hits (path) VALUES (%(path)s)")
def add_hit(path: str) -> None: ...


@query("SELECT * FROM soak_users WHERE id = %(id)s")
def soak_user(id: int) -> SoakUser: ...


@query("SELECT * FROM soak_users ORDER BY id")
def soak_users() -> Iterator[SoakUser]: ...


@query("INSERT INTO soak_hits (path) VALUES (%(path)s)")
async def aadd_hit(path: str) -> None: ...


@query("SELECT * FROM soak_users WHERE id = %(id)s")
async def asoak_user(id: int) -> SoakUser: ...


@query("SELECT pg_sleep(0.02)")
async def asleep() -> None: ...


# -- WSGI ------------------------------------------------------------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    add_hit(environ["PATH_INFO"])
    path = environ["PATH_INFO"].split("#")[0]
    if path in FAILING:
        raise HandlerError(path)
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path in {"/stream", "/disconnect"}:
        return (u.name.encode() for u in soak_users())
    if path == "/abandon":
        stream = soak_users()
        return [next(stream).name.encode()]
    return [soak_user(1).name.encode()]


def wsgi_request(app: Callable[..., Iterable[bytes]], path: str) -> bool:
    """Serve one request (``/route#n``) as a WSGI server does; return whether it succeeded."""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": None}
    try:
        result = app(environ, lambda *_status_and_headers: None)
    except HandlerError:
        return False
    try:
        for i, _chunk in enumerate(result):
            if path.startswith("/disconnect") and i == 2:
                return False  # the client went away: the server stops iterating and closes the response
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return True


def wsgi_soak(db: Database, requests: int, threads: int) -> set[str]:
    """Serve *requests* requests from *threads* threads; return the ids of those that succeeded."""
    app = WSGIMiddleware(wsgi_app, db)
    paths = [f"{p}#{n}" for n, p in enumerate(itertools.islice(itertools.cycle(PATHS), requests))]
    with ThreadPoolExecutor(threads) as pool:
        succeeded = pool.map(lambda p: wsgi_request(app, p), paths)
        return {p for p, ok in zip(paths, succeeded, strict=True) if ok}


# -- ASGI ------------------------------------------------------------------------------------------------


async def asgi_app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    await aadd_hit(scope["path"])
    path = scope["path"].split("#")[0]
    if path in FAILING:
        raise HandlerError(path)
    if path == "/slow":
        await asleep()
    if path == "/disconnect":
        while (await receive())["type"] != "http.disconnect":
            pass
        return  # nothing to answer to
    user = await asoak_user(1)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": user.name.encode(), "more_body": path == "/stream"})
    if path == "/stream":
        await send({"type": "http.response.body", "body": b"!", "more_body": False})


async def asgi_request(app: Any, path: str) -> str:
    """Serve one request as an ASGI server does; return "ok", "failed" or "disconnected"."""
    messages: list[MutableMapping[str, Any]] = [{"type": "http.request", "body": b"", "more_body": False}]
    if path.startswith("/disconnect"):
        messages.append({"type": "http.disconnect"})

    async def receive() -> MutableMapping[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # the client stays until the response is complete, as a server's receive
        raise AssertionError

    async def send(message: MutableMapping[str, Any]) -> None:
        pass

    scope = {"type": "http", "path": path, "method": "GET", "headers": []}
    try:
        await app(scope, receive, send)
    except HandlerError:
        return "failed"
    return "disconnected" if path.startswith("/disconnect") else "ok"


ASGI_PATHS = ["/ok", "/raise", "/stream", "/slow", "/disconnect", "/ok", "/raise", "/slow"]


async def asgi_soak(db: Database, requests: int, concurrency: int) -> dict[str, set[str]]:
    """Serve *requests* requests, *concurrency* at a time, cancelling half the `/slow` ones mid-query; return
    the request ids by outcome."""
    app = ASGIMiddleware(asgi_app, db)
    outcomes: dict[str, set[str]] = {"ok": set(), "failed": set(), "cancelled": set(), "disconnected": set()}
    paths = [f"{p}#{n}" for n, p in enumerate(itertools.islice(itertools.cycle(ASGI_PATHS), requests))]
    for start in range(0, requests, concurrency):
        batch = paths[start : start + concurrency]
        tasks = [asyncio.create_task(asgi_request(app, p)) for p in batch]
        await asyncio.sleep(0.01)  # let the requests get into their queries before cancelling some
        for path, task in zip(batch, tasks, strict=True):
            if path.startswith("/slow") and int(path.split("#")[1]) % 8 == ASGI_PATHS.index("/slow"):
                task.cancel()  # the first /slow of each cycle; the second runs to the end
        done = await asyncio.gather(*tasks, return_exceptions=True)
        for path, outcome in zip(batch, done, strict=True):
            outcomes["cancelled" if isinstance(outcome, asyncio.CancelledError) else str(outcome)].add(path)
    return outcomes


# -- what the server says afterwards ---------------------------------------------------------------------


def backends(admin: psycopg.Connection[Any], application_name: str) -> dict[str, int]:
    rows = admin.execute(
        "SELECT coalesce(state, ''), count(*) FROM pg_stat_activity WHERE application_name = %s GROUP BY 1",
        [application_name],
    ).fetchall()
    return dict(rows)


def committed_hits(admin: psycopg.Connection[Any]) -> set[str]:
    return {path for (path,) in admin.execute("SELECT path FROM soak_hits").fetchall()}
