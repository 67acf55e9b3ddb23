"""The exceptions pgdecor raises.

Every pgdecor exception derives from `Error` and also from the builtin exception it refines, so code that
already catches ``TypeError`` or ``LookupError`` keeps working::

    Error
    ├── SignatureError      (TypeError)     a stub cannot be turned into a call; raised when decorating
    ├── ArgumentError       (TypeError)     an argument does not fit its annotation; nothing was sent
    ├── NoSessionError      (RuntimeError)  no session is open, it is of the other kind (sync/async), or it
    │                                       has a transaction where a procedure that commits is called
    ├── NotFoundError       (LookupError)   the stub promised exactly one row and got none
    ├── TooManyRowsError    (LookupError)   the stub promised at most one row and got several
    ├── MappingError        (TypeError)     the rows do not fit the annotated return type
    ├── RolledBackError     (RuntimeError)  a session ended normally, but its transaction had failed
    ├── CommitUnknownError  (RuntimeError)  the connection was lost during COMMIT: it may have committed
    ├── DeadlineError       (TimeoutError)  a call was stopped at its stub's timeout or its session's deadline
    ├── UnreachableError    (ConnectionError) a Database being opened could not connect to its server
    ├── UndefinedFunctionError (LookupError) no stored function fits the stub (SQLSTATE 42883)
    ├── AmbiguousFunctionError (LookupError) several overloads fit the stub (SQLSTATE 42725)
    └── PayloadError        (ValueError)    a notification's payload does not decode as the listener's type

Errors raised by the server stay psycopg's own classes (``psycopg.errors.UniqueViolation`` ...); pgdecor adds a
note naming the stub and the SQL it ran.
"""

from __future__ import annotations

import sys

from typing_extensions import Self

__all__ = [
    "AmbiguousFunctionError",
    "ArgumentError",
    "CommitUnknownError",
    "DeadlineError",
    "Error",
    "MappingError",
    "NoSessionError",
    "NotFoundError",
    "PayloadError",
    "RolledBackError",
    "SignatureError",
    "TooManyRowsError",
    "UndefinedFunctionError",
    "UnreachableError",
]


class Error(Exception):
    """Base class of every exception pgdecor raises itself."""

    #: For an error about what the database has (the function a stub names, the columns it returns): what was
    #: found and what to do, as the message says them, for tools that report them apart (`pgdecor check`).
    found: str | None = None
    fix: str | None = None

    @classmethod
    def mismatch(cls, stub: str, found: str, fix: str) -> Self:
        """The error *stub* raises for *found* in the database, with *fix*: ``"{stub}: {found}; {fix}"``."""
        err = cls(f"{stub}: {found}; {fix}")
        err.found, err.fix = found, fix
        return err


class SignatureError(Error, TypeError):
    """A decorated stub cannot be called as written: raised at decoration time."""


class ArgumentError(Error, TypeError):
    """An argument does not fit its annotation; the call was not sent."""


class NoSessionError(Error, RuntimeError):
    """A stub was called where no usable session is open."""


class NotFoundError(Error, LookupError):
    """A stub returning exactly one row got no row."""


class TooManyRowsError(Error, LookupError):
    """A stub returning one row (or none) got more than one."""


class MappingError(Error, TypeError):
    """The rows returned do not fit the stub's return annotation."""


class RolledBackError(Error, RuntimeError):
    """A session's block ended normally but a database error inside it (caught by the code) had aborted the
    transaction, so it was rolled back instead of committed."""


class CommitUnknownError(Error, RuntimeError):
    """A session's COMMIT was sent but its answer never came: the connection was lost, or the server ended it,
    while the transaction was committing. It may have committed or not, and nothing on the client can tell: the
    database can (look for what the session wrote, or make the work idempotent). Never retried by units of work;
    the error the connection gave is its ``__cause__``."""


class DeadlineError(Error, TimeoutError):
    """A call ran out of time: its stub's ``timeout=`` or its session's ``deadline=`` passed before it ended (the
    server stopped it, or, when the server did not answer, the client stopped waiting and closed the connection),
    or had passed before it began (nothing was sent). The session's transaction is rolled back, as for any error
    inside it. ``seconds`` is the limit that ran out, ``limit`` which one (``"timeout"`` or ``"deadline"``); the
    server's ``QueryCanceled`` is the ``__cause__`` when it stopped the statement."""

    #: The SQLSTATE the server gives a statement it stopped (``query_canceled``), as on psycopg's errors.
    sqlstate = "57014"

    def __init__(self, message: str, seconds: float = 0.0, limit: str = "") -> None:
        super().__init__(message)
        #: The seconds the call was given.
        self.seconds = seconds
        #: Which limit ran out: ``"timeout"`` (the stub's) or ``"deadline"`` (the session's).
        self.limit = limit

    def __reduce__(self) -> tuple[type[DeadlineError], tuple[str, float, str]]:
        return type(self), (str(self), self.seconds, self.limit)


class UnreachableError(Error, ConnectionError):
    """A `Database` being opened could not connect to its server: none runs there, the host is unknown, or it
    refused the connection (authentication, a database that does not exist). The message has the server's reason
    and the conninfo with its password masked."""


class UndefinedFunctionError(Error, LookupError):
    """The stored function named by a stub does not exist with the stub's parameters (found by pgdecor in the
    catalog, or by the server when the function was dropped since)."""

    #: The SQLSTATE the server gives the same condition, as on psycopg's errors.
    sqlstate = "42883"


class AmbiguousFunctionError(Error, LookupError):
    """Several overloads of the function a stub names fit its parameters."""

    #: The SQLSTATE the server gives the same condition.
    sqlstate = "42725"


class PayloadError(Error, ValueError):
    """A notification's payload does not decode as the type its listener annotates: not JSON, or JSON of another
    shape. ``payload`` is the text as it came, ``channel`` the channel it came on. A listener skips such payloads
    with a WARNING by default (and counts them); ``@listen(..., undecodable="raise")`` raises this instead."""

    def __init__(self, message: str, channel: str = "", payload: str = "") -> None:
        super().__init__(message)
        #: The channel the notification came on.
        self.channel = channel
        #: The payload, as the server sent it.
        self.payload = payload


def add_note(err: BaseException, note: str) -> None:
    """Attach *note* to *err* as PEP 678 does, also on Python 3.10."""
    if sys.version_info >= (3, 11):
        err.add_note(note)
    else:  # pragma: no cover - exercised on Python 3.10 only
        object.__setattr__(err, "__notes__", [*getattr(err, "__notes__", ()), note])
