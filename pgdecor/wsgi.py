"""WSGI middleware: one pgdecor session per request, ended when the response is finished.

::

    from pgdecor import Database
    from pgdecor.wsgi import SessionMiddleware

    db = Database("postgresql:///app").__enter__()   # or open it in your app factory
    app.wsgi_app = SessionMiddleware(app.wsgi_app, db)  # Flask

The session is opened before the application is called and ended after the server has closed the response
iterable (PEP 3333: ``close()`` is called after the last chunk is sent, or when the client goes away), so a
streaming response can still read from the database. It commits when the application and its response
iterable finish without raising (also when the server closes it early, the client gone: the handler's work is
done), and rolls back when either raises. The middleware runs the application, and
each step of the response, in a context of its own, so the session is the request's even if the server
iterates the response from another thread.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from ._session import Session, Source

__all__ = ["SessionMiddleware"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]


class SessionMiddleware:
    """Wrap a WSGI application so that each request runs in its own session on *source* (see `pgdecor.session`)."""

    def __init__(self, app: WSGIApp, source: Source, *, replica: Source | None = None) -> None:
        self.app = app
        self.source = source
        self.replica = replica

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        context = contextvars.copy_context()
        sess = Session(self.source, self.replica, f"{type(self).__module__}.SessionMiddleware for {self.app!r}")
        context.run(sess.__enter__)
        try:
            result = context.run(self.app, environ, start_response)
        except BaseException:
            context.run(sess.__exit__, *sys.exc_info())
            raise
        return _Response(result, context, sess)


class _Response:
    """The application's response iterable, run in the request's context; closing it ends the session."""

    __slots__ = ("_context", "_done", "_iterator", "_result", "_session")

    def __init__(self, result: Iterable[bytes], context: contextvars.Context, sess: Session) -> None:
        self._result = result
        self._context = context
        self._session = sess
        self._iterator: Iterator[bytes] | None = None
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = self._context.run(iter, self._result)
        try:
            return self._context.run(next, self._iterator)
        except StopIteration:
            raise
        except BaseException:
            self._end(sys.exc_info())
            raise

    def close(self) -> None:
        exc_info: ExcInfo = (None, None, None)
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                self._context.run(close)
        except BaseException:
            exc_info = sys.exc_info()
            raise
        finally:
            self._end(exc_info)

    def _end(self, exc_info: ExcInfo) -> None:
        if not self._done:
            self._done = True
            self._context.run(self._session.__exit__, *exc_info)
