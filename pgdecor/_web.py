"""What the WSGI and ASGI middleware share: when a response's session commits, and how a failed commit is told."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from ._errors import ArgumentError
from ._session import Session
from ._sources import Source, check_sources

__all__ = ["CommitOn", "Middleware", "commit_unless_server_error", "decide", "log_commit_failure"]

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
        source: Source,
        *,
        replica: Source | None = None,
        commit_on: CommitOn = commit_unless_server_error,
    ) -> None:
        check_sources("SessionMiddleware()", source, replica)
        _check_commit_on(commit_on)
        self.app = app
        self.source = source
        self.replica = replica
        self.commit_on = commit_on

    def request_session(self) -> Session:
        """A new session for a request (its sources were checked when the middleware was made)."""
        return Session(self.source, self.replica, f"{type(self).__module__}.SessionMiddleware for {self.app!r}")


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


def log_commit_failure(method: str, path: str) -> None:
    """Log, with the exception being handled, that a request's commit failed, so the response fails too."""
    logger.exception(  # noqa: LOG004 - called only from the middleware's exception handlers
        "pgdecor: the session of %s %s failed to commit; the response fails instead", method, path
    )
