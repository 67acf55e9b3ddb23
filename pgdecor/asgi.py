"""ASGI middleware: one pgdecor session per HTTP request, ended when the response is finished.

::

    from pgdecor import Database
    from pgdecor.asgi import SessionMiddleware

    db = Database("postgresql:///app")               # entered with `async with` in the app's lifespan
    app.add_middleware(SessionMiddleware, source=db)  # Starlette / FastAPI

The session is opened when the request starts and ended as soon as the last body message has been sent
(committed, its connection given back, before the server's own bookkeeping); if the application raises, is
cancelled, or the client disconnects first, it is rolled back when the application returns. Work the
application does after its last body message (background tasks) needs a session of its own.
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

        async def send_then_finish(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await sess._afinish(None, None, None)

        async with sess:
            await self.app(scope, receive, send_then_finish)
