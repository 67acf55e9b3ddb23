"""The exceptions pgdecor raises.

Every pgdecor exception derives from `Error` and also from the builtin exception it refines, so code that
already catches ``TypeError`` or ``LookupError`` keeps working::

    Error
    ├── SignatureError      (TypeError)     a stub cannot be turned into a call; raised when decorating
    ├── ArgumentError       (TypeError)     an argument does not fit its annotation; nothing was sent
    ├── NoSessionError      (RuntimeError)  no session is open, or it is of the other kind (sync/async)
    ├── NotFoundError       (LookupError)   the stub promised exactly one row and got none
    ├── TooManyRowsError    (LookupError)   the stub promised at most one row and got several
    ├── MappingError        (TypeError)     the rows do not fit the annotated return type
    ├── RolledBackError     (RuntimeError)  a session ended normally, but its transaction had failed
    ├── UndefinedFunctionError (psycopg.errors.UndefinedFunction)
    │                                       no stored function fits the stub
    └── AmbiguousFunctionError (psycopg.errors.AmbiguousFunction)
                                            several overloads fit the stub

Errors raised by the server stay psycopg's own classes (``psycopg.errors.UniqueViolation`` ...); pgdecor adds a
note naming the stub and the SQL it ran.
"""

from __future__ import annotations

import sys

import psycopg.errors

__all__ = [
    "AmbiguousFunctionError",
    "ArgumentError",
    "Error",
    "MappingError",
    "NoSessionError",
    "NotFoundError",
    "RolledBackError",
    "SignatureError",
    "TooManyRowsError",
    "UndefinedFunctionError",
]


class Error(Exception):
    """Base class of every exception pgdecor raises itself."""


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


class UndefinedFunctionError(Error, psycopg.errors.UndefinedFunction):
    """The stored function named by a stub does not exist with the stub's parameters.

    It is also a `psycopg.errors.UndefinedFunction`, so handlers written for psycopg keep working.
    """

    def __reduce__(self) -> tuple[type[UndefinedFunctionError], tuple[str]]:
        return (type(self), (str(self),))


class AmbiguousFunctionError(Error, psycopg.errors.AmbiguousFunction):
    """Several overloads of the function a stub names fit its parameters.

    It is also a `psycopg.errors.AmbiguousFunction`.
    """

    def __reduce__(self) -> tuple[type[AmbiguousFunctionError], tuple[str]]:
        return (type(self), (str(self),))


def add_note(err: BaseException, note: str) -> None:
    """Attach *note* to *err* as PEP 678 does, also on Python 3.10."""
    if sys.version_info >= (3, 11):
        err.add_note(note)
    else:  # pragma: no cover - exercised on Python 3.10 only
        object.__setattr__(err, "__notes__", [*getattr(err, "__notes__", ()), note])
