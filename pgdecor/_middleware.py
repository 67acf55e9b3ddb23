"""What the WSGI and ASGI middleware share: when a response's session commits, and how a failed commit is told."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from ._errors import ArgumentError, CommitUnknownError
from ._session.api import Session
from ._session.modes import DEFAULT_MODE
from ._sources.kinds import Given, source_for
from ._sources.replicas import is_token

__all__ = [
    "UNKNOWN_BODY",
    "UNKNOWN_HEADERS",
    "UNKNOWN_STATUS",
    "CommitOn",
    "Middleware",
    "commit_unless_server_error",
    "decide",
    "log_commit_failure",
]

App = TypeVar("App")

logger = logging.getLogger("pgdecor")

#: Whether a request whose response has this HTTP status commits its session.
CommitOn = Callable[[int], bool]


def commit_unless_server_error(status: int) -> bool:
    """The default policy: commit unless the status is a server error (500 and above). Frameworks turn a handler's
    exception into such a response before the middleware sees it, so the status is what says the request failed."""
    return status < 500


class Middleware(Generic[App]):
    """What both middleware are made of: the application, the source of each request's session, and the policy."""

    def __init__(
        self,
        app: App,
        source: Given,
        *,
        replica: Given | None = None,
        commit_on: CommitOn = commit_unless_server_error,
        commit_cookie: str | None = None,
    ) -> None:
        #: The sources of its sessions, each made the `Source` of its kind once, here.
        self._sources = (
            source_for("SessionMiddleware()", source),
            None if replica is None else source_for("SessionMiddleware()", replica),
        )
        _check_commit_on(commit_on)
        if commit_cookie is not None and not _COOKIE_NAME.fullmatch(str(commit_cookie)):
            msg = f"SessionMiddleware(commit_cookie={commit_cookie!r}): give a cookie name (letters, digits, -, _)"
            raise ArgumentError(msg)
        self.app = app
        self.source = source
        self.replica = replica
        self.commit_on = commit_on
        #: The cookie that carries a request's commit token to the client's next requests (see `request_session`).
        self.commit_cookie = commit_cookie

    def request_session(self, cookie_headers: Iterable[str] = ()) -> Session:
        """A new session for a request (its sources were checked when the middleware was made): with
        *commit_cookie*, given the token the request's ``Cookie`` headers carry, if it is one (anything else is
        ignored), so that its readonly stubs read what the client's earlier requests wrote."""
        token = None
        if self.commit_cookie is not None:
            token = _token_in(cookie_headers, self.commit_cookie)
        where = f"{type(self).__module__}.SessionMiddleware for {self.app!r}"
        return Session(*self._sources, where, DEFAULT_MODE, token)

    def token_header(self, sess: Session, *, https: bool) -> tuple[str, str] | None:
        """The ``Set-Cookie`` header that hands the session's commit token to the client, if it has one: ``Secure``
        when the request came over HTTPS."""
        token = sess.commit_token
        if self.commit_cookie is None or token is None:
            return None
        secure = "; Secure" if https else ""
        return (
            "Set-Cookie",
            f"{self.commit_cookie}={token}; Path=/; Max-Age={_TOKEN_AGE}; HttpOnly; SameSite=Lax{secure}",
        )


#: Seconds a commit cookie lasts: long enough for any replica to have replayed that far since.
_TOKEN_AGE = 300
_COOKIE_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _token_in(cookie_headers: Iterable[str], name: str) -> str | None:
    """The first value of the cookie *name* in *cookie_headers* that has a token's shape. One pass over each
    header, reading nothing but the cookie's name and value (a header is no longer parsed as a whole: some
    versions of Python's cookie parser take quadratic time on hostile headers)."""
    for header in cookie_headers:
        for pair in header.split(";"):
            key, sep, value = pair.partition("=")
            if sep and key.strip() == name:
                value = value.strip()
                if is_token(value):
                    return value
                logger.debug("pgdecor: ignored a %s cookie that is not a commit token", name)
    return None


def _check_commit_on(commit_on: object) -> None:
    """Raise `ArgumentError` unless *commit_on* can be called with a status."""
    if not callable(commit_on):
        msg = (
            f"SessionMiddleware(commit_on=...) takes a function of the HTTP status returning whether to commit "
            f"(e.g. `lambda status: status < 400`), not {type(commit_on).__qualname__} {commit_on!r:.40}"
        )
        raise ArgumentError(msg)


def decide(commit_on: CommitOn, status: int | None, *, complete: bool) -> bool:
    """Whether to commit: the response was complete (the application gave all of it, and the client is still
    there), it has a status, and the policy accepts that status."""
    return complete and status is not None and commit_on(status)


def log_commit_failure(method: str, path: str, err: BaseException) -> None:
    """Log, with the exception being handled, that a request's commit failed (or may have), so the response
    fails too."""
    if isinstance(err, CommitUnknownError):
        logger.exception(  # noqa: LOG004 - called only from the middleware's exception handlers
            "pgdecor: the session of %s %s lost its connection during COMMIT: whether it committed is unknown; "
            "the response says so (500)",
            method,
            path,
        )
        return
    logger.exception(  # noqa: LOG004 - called only from the middleware's exception handlers
        "pgdecor: the session of %s %s failed to commit; the response fails instead", method, path
    )


#: The response to a request whose COMMIT may or may not have happened, where nothing of its own was sent yet.
UNKNOWN_STATUS = 500
UNKNOWN_BODY = (
    b"The outcome of this request is unknown: the connection to the database was lost while its changes were being "
    b"committed. Check whether they were made before sending it again.\n"
)
UNKNOWN_HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(UNKNOWN_BODY)))]
