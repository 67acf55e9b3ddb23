"""ASGI middleware: one pgdecor session per HTTP request, ended when the response is finished.

::

    from pgdecor import Database
    from pgdecor.asgi import SessionMiddleware

    db = Database("postgresql:///app")               # entered with `async with` in the app's lifespan
    app.add_middleware(SessionMiddleware, source=db)  # Starlette / FastAPI

The session is opened when the request starts and ended just before the last body message is sent (committed,
its connection given back, so a client never sees a complete response whose transaction failed to commit); if
the application raises, is cancelled, or the client disconnects first, it is rolled back when the application
returns. Work the application does after its last body message (background tasks) needs a session of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._session import Session, Source

__all__ = ["SessionMiddleware"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class SessionMiddleware:
    """Wrap an ASGI application so that each HTTP request runs in its own async session on *source*."""

    def __init__(self, app: ASGIApp, source: Source, *, replica: Source | None = None) -> None:
        self.app = app
        self.source = source
        self.replica = replica

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sess = Session(self.source, self.replica, f"{type(self).__module__}.SessionMiddleware for {self.app!r}")

        async def finish_then_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                # Commit before the client sees the end of a successful response: if the commit fails, the
                # application gets the error instead, and the client an incomplete response.
                await sess._afinish(None, None, None)
            await send(message)

        async with sess:
            await self.app(scope, receive, finish_then_send)
