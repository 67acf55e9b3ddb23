"""WSGI middleware: one pgdecor session per request, committed before the response is complete.

::

    from pgdecor import Database
    from pgdecor.wsgi import SessionMiddleware

    db = Database("postgresql:///app").__enter__()   # or open it in your app factory
    app.wsgi_app = SessionMiddleware(app.wsgi_app, db)  # Flask

The session is opened before the application is called and ends when its response does:

- **Committed** when the application and its response iterable finish without raising and the response's
  status passes *commit_on* (by default, any status below 500: frameworks turn a handler's exception into a
  500 response before the middleware sees it). The commit happens before the last chunk of the body is handed
  to the server (the middleware holds one chunk back), so a streaming body still reads inside the session and
  a client never receives a complete response whose transaction did not commit. If the commit fails, the
  response fails: the server answers 500 when nothing was sent yet, and aborts the body otherwise; the failure
  is logged with the request. If the connection was lost while COMMIT was under way (`pgdecor.CommitUnknownError`:
  it may have committed), the middleware answers 500 itself, its body saying the outcome is unknown.
- **Rolled back** when the application or its iterable raises, when the status fails *commit_on*, and when the
  server closes the response before its end (the client went away).

The middleware runs the application, and each step of the response, in a context of its own, so the session is
the request's even if the server iterates the response from another thread.

With *commit_cookie* (a cookie name), each request's session is given the commit token the request's cookie
carries, so that its readonly stubs read the client's earlier writes even from a replica (see `pgdecor.session`'s
``after``); a response whose session wrote sets the cookie to its own token (``Secure`` when the request came
over HTTPS, as ``wsgi.url_scheme`` says: behind a proxy that ends TLS, have the server trust its forwarded
scheme). Tokens are sealed with the `pgdecor.Database`'s ``secret``: a cookie a client made up is ignored.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from ._errors import CommitUnknownError
from ._middleware import UNKNOWN_BODY, UNKNOWN_HEADERS, UNKNOWN_STATUS, Middleware, decide, log_commit_failure
from ._session.api import Session

__all__ = ["SessionMiddleware"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]

_NOTHING = (None, None, None)


class SessionMiddleware(Middleware[WSGIApp]):
    """Wrap a WSGI application so that each request runs in its own session on *source* (see `pgdecor.session`),
    committed only when the response is complete and its status passes *commit_on* (by default: below 500)."""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        context = contextvars.copy_context()
        sess = self.request_session((environ.get("HTTP_COOKIE") or "",) if self.commit_cookie else ())
        response = _Response(self, context, sess, environ, start_response)
        context.run(sess.__enter__)
        try:
            response.result = context.run(self.app, environ, response.start_response)
        except BaseException:
            context.run(sess.__exit__, *sys.exc_info())
            raise
        return response


class _Response:
    """The application's response iterable, run in the request's context, one chunk behind it: the session ends
    (commits or rolls back) before the last chunk goes to the server, or when the server closes it early."""

    __slots__ = (
        "_context",
        "_ended",
        "_environ",
        "_held",
        "_iterator",
        "_middleware",
        "_server_write",
        "_session",
        "_start",
        "_start_response",
        "_yielded",
        "result",
        "status",
    )

    def __init__(
        self,
        middleware: SessionMiddleware,
        context: contextvars.Context,
        sess: Session,
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> None:
        self._middleware = middleware
        self._context = context
        self._session = sess
        self._environ = environ
        self._start_response = start_response
        #: The response's start, held until its first chunk goes to the server: then the session has committed,
        #: if the body is that one chunk, and its token can go into the headers, or its failure replace the
        #: response.
        self._start: tuple[str, list[tuple[str, str]], Any] | None = None
        self._server_write: Any = None
        self.result: Iterable[bytes] = ()
        self.status: int | None = None
        self._iterator: Iterator[bytes] | None = None
        #: The chunk the application gave last, not yet handed on; None when there is none.
        self._held: bytes | None = None
        self._ended = False
        #: Whether a chunk went to the server: until then, the response can still be replaced.
        self._yielded = False

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        """The server's start_response, noting the status (the last one given, as PEP 3333 allows); held until the
        first chunk (a server sends no headers before the first chunk either)."""
        code = status.split(" ", 1)[0]
        self.status = int(code) if code.isdigit() else None
        self._start = (status, headers, exc_info)
        return self._write

    def _started(self, status: str, headers: list[tuple[str, str]], exc_info: Any) -> Any:
        if exc_info is None:
            return self._start_response(status, headers)
        return self._start_response(status, headers, exc_info)

    def _send_start(self) -> Any:
        """The held start, given to the server (with the session's token, if it has one by now)."""
        start, self._start = self._start, None
        if start is None:
            return None
        status, headers, exc_info = start
        cookie = self._middleware.token_header(self._session, https=self._environ.get("wsgi.url_scheme") == "https")
        return self._started(status, [*headers, cookie] if cookie else headers, exc_info)

    def _write(self, data: bytes) -> None:
        """The ``write`` of PEP 3333's start_response, for applications that use it: the start goes first."""
        write = self._send_start()
        if write is not None:
            self._server_write = write
        self._yielded = True
        self._server_write(data)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        while not self._ended:
            try:
                if self._iterator is None:
                    self._iterator = self._context.run(iter, self.result)
                chunk = self._context.run(next, self._iterator)
            except StopIteration:
                try:
                    self._end(_NOTHING, complete=True)
                except BaseException as err:
                    method, path = self._environ.get("REQUEST_METHOD", "?"), self._environ.get("PATH_INFO", "?")
                    log_commit_failure(method, path, err)
                    if isinstance(err, CommitUnknownError) and not self._yielded:
                        return self._unknown()
                    raise
                break
            except BaseException:
                self._end(sys.exc_info(), complete=False)
                raise
            held, self._held = self._held, chunk
            if held is not None:
                self._send_start()
                self._yielded = True
                return held
        held, self._held = self._held, None
        self._send_start()
        if held is None:
            raise StopIteration
        self._yielded = True
        return held

    def _unknown(self) -> bytes:
        """The response of a request whose commit's outcome is unknown, in place of the application's (nothing of
        which reached the server)."""
        self._start, self._held, self._yielded = None, None, True
        self._started(f"{UNKNOWN_STATUS} Internal Server Error", list(UNKNOWN_HEADERS), None)
        return UNKNOWN_BODY

    def close(self) -> None:
        exc_info: ExcInfo = _NOTHING
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                self._context.run(close)
        except BaseException:
            exc_info = sys.exc_info()
            raise
        finally:
            # Closed before the end: the client went away, or the server gave up on the response.
            self._end(exc_info, complete=False)

    def _end(self, exc_info: ExcInfo, *, complete: bool) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            if exc_info[1] is None and not decide(self._middleware.commit_on, self.status, complete=complete):
                self._session.doom()
        except BaseException:  # the policy itself failed: the session ends all the same, rolled back
            self._context.run(self._session.__exit__, *sys.exc_info())
            raise
        self._context.run(self._session.__exit__, *exc_info)
