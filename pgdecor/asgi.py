"""ASGI middleware: one pgdecor session per HTTP request, committed before the response is complete.

::

    from pgdecor import Database
    from pgdecor.asgi import SessionMiddleware

    db = Database("postgresql:///app")               # entered with `async with` in the app's lifespan
    app.add_middleware(SessionMiddleware, source=db)  # Starlette / FastAPI

The session is opened when the request starts and ends when its response does:

- **Committed** just before the last body message is sent, when the response's status passes *commit_on* (by
  default, any status below 500) and the client is still there. The response's start is held back until its
  first body message, so a response sent in one message is not started before its commit: if the commit
  fails, the application gets the error and the server answers 500 (an aborted body, for a response already
  streaming); the failure is logged with the request. If the connection was lost while COMMIT was under way
  (`pgdecor.CommitUnknownError`: it may have committed), the middleware answers 500 itself, its body saying the
  outcome is unknown.
- **Rolled back** when the application raises or is cancelled, when the status fails *commit_on*, when the
  client disconnected before the end, and when the application returns without completing its response.

Ending the transaction is shielded from cancellation (anyio's cancel scopes cancel again at every await), so a
cancelled request gives its connection back usable. Work the application does after its last body message
(background tasks) needs a session of its own.

With *commit_cookie* (a cookie name), each request's session is given the commit token the request's cookie
carries, so that its readonly stubs read the client's earlier writes even from a replica (see `pgdecor.session`'s
``after``); a response whose session wrote sets the cookie to its own token (``Secure`` when the request came
over HTTPS, as the scope's ``scheme`` says: behind a proxy that ends TLS, run the server with its proxy headers
trusted). Tokens are sealed with the `pgdecor.Database`'s ``secret``: a cookie a client made up is ignored.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._errors import CommitUnknownError
from ._middleware import UNKNOWN_BODY, UNKNOWN_HEADERS, UNKNOWN_STATUS, Middleware, decide, log_commit_failure
from ._session.api import Session

__all__ = ["SessionMiddleware"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

#: Turns of the event loop given to the server to deliver a disconnect it has seen, before committing.
_PEEK_TURNS = 4

#: Messages that can end a response (the body, and the extensions that send a file instead).
_LAST = frozenset({"http.response.body", "http.response.pathsend", "http.response.zerocopysend"})


class SessionMiddleware(Middleware[ASGIApp]):
    """Wrap an ASGI application so that each HTTP request runs in its own async session on *source*, committed
    only when the response is complete and its status passes *commit_on* (by default: below 500)."""

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sess = self.request_session(_cookie_headers(scope) if self.commit_cookie else ())
        response = _Response(self, sess, scope, receive, send)
        await sess.__aenter__()
        try:
            await self.app(scope, response.receive, response.send)
        except BaseException:
            await sess.__aexit__(*sys.exc_info())
            raise
        if not response.ended:  # the application returned without finishing its response
            sess.doom()
        await sess.__aexit__(None, None, None)


def _cookie_headers(scope: MutableMapping[str, Any]) -> list[str]:
    """The request's ``Cookie`` headers."""
    return [value.decode("latin-1") for name, value in scope.get("headers", ()) if name.lower() == b"cookie"]


class _Response:
    """The request's receive and send, watched: the status, the client's disconnect, the end of the body."""

    __slots__ = ("_middleware", "_receive", "_send", "_session", "_start", "disconnected", "ended", "scope", "status")

    def __init__(
        self,
        middleware: SessionMiddleware,
        sess: Session,
        scope: MutableMapping[str, Any],
        receive: Receive,
        send: Send,
    ) -> None:
        self._middleware = middleware
        self._session = sess
        self.scope = scope
        self._receive = receive
        self._send = send
        self.status: int | None = None
        #: The response's start message, held until its first body message.
        self._start: Message | None = None
        self.disconnected = False
        self.ended = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            self._start = message
            return
        if kind in _LAST and not message.get("more_body", False) and not self.ended:
            self.ended = True
            if self._session.borrowed:  # it borrowed a connection: there is a transaction to end
                complete = not self.disconnected and not await self._client_gone()
                if not decide(self._middleware.commit_on, self.status, complete=complete):
                    self._session.doom()
                try:
                    await self._session.aend()
                except BaseException as err:
                    log_commit_failure(self.scope.get("method", "?"), self.scope.get("path", "?"), err)
                    if isinstance(err, CommitUnknownError) and self._start is not None:
                        await self._unknown()
                        return
                    raise
        start, self._start = self._start, None
        if start is not None:
            # The token is known once the session has committed.
            cookie = self._middleware.token_header(self._session, https=self.scope.get("scheme") in ("https", "wss"))
            if cookie is not None:
                start = {**start, "headers": [*start.get("headers", ()), (b"set-cookie", cookie[1].encode())]}
            await self._send(start)
        await self._send(message)

    async def _unknown(self) -> None:
        """Answer a request whose commit's outcome is unknown, in place of the application's response (nothing of
        which was sent)."""
        self._start = None
        headers = [(k.lower().encode(), v.encode()) for k, v in UNKNOWN_HEADERS]
        await self._send({"type": "http.response.start", "status": UNKNOWN_STATUS, "headers": headers})
        await self._send({"type": "http.response.body", "body": UNKNOWN_BODY})

    async def _client_gone(self) -> bool:
        """Whether the server has a disconnect to deliver now: a receive, given a few turns of the loop and then
        cancelled if it waits (the application has read its request: it is sending the end of its response).
        What remains of a request body the application did not read is read past, up to its end."""
        body_left = True
        while True:
            peek = asyncio.ensure_future(self._receive())
            for _ in range(_PEEK_TURNS):
                await asyncio.sleep(0)
                if peek.done():
                    break
            if not peek.done():
                peek.cancel()
                await asyncio.wait([peek])
                return False
            message = peek.result()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                return True
            if not body_left:  # a server that keeps giving request messages: nothing to learn from it
                return False
            body_left = message.get("more_body", False)
