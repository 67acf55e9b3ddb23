"""pgdecor: call PostgreSQL stored functions and hand-written SQL through typed Python stubs."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import _libpq  # noqa: F401 - first: psycopg without a libpq says what to install
from ._channels.channel import Missed
from ._channels.listener import Listener
from ._channels.listener_async import AsyncListener
from ._cli.check import Problem, check
from ._counters import Counters, counters
from ._errors import (
    AmbiguousFunctionError,
    ArgumentError,
    CommitUnknownError,
    DeadlineError,
    Error,
    MappingError,
    NoSessionError,
    NotFoundError,
    PayloadError,
    RolledBackError,
    SignatureError,
    TooManyRowsError,
    UndefinedFunctionError,
    UnreachableError,
)
from ._plan.params import DEFAULT, Arg
from ._run.copy_out import CopyStream
from ._run.copy_out_async import AsyncCopyStream
from ._run.stream import Stream
from ._run.stream_async import AsyncStream
from ._service.database import Database
from ._service.retry_policy import Retry
from ._service.units import retried
from ._session.api import Session, TransactionScope, session, transaction
from ._stubs.copy import CopyStub, copy_in, copy_out
from ._stubs.decorators import procedure, query
from ._stubs.notify import listen, notify
from ._stubs.stub import Stub

try:
    __version__ = _version("pgdecor")
except PackageNotFoundError:  # pragma: no cover - imported from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT",
    "AmbiguousFunctionError",
    "Arg",
    "ArgumentError",
    "AsyncCopyStream",
    "AsyncListener",
    "AsyncStream",
    "CommitUnknownError",
    "CopyStream",
    "CopyStub",
    "Counters",
    "Database",
    "DeadlineError",
    "Error",
    "Listener",
    "MappingError",
    "Missed",
    "NoSessionError",
    "NotFoundError",
    "PayloadError",
    "Problem",
    "Retry",
    "RolledBackError",
    "Session",
    "SignatureError",
    "Stream",
    "Stub",
    "TooManyRowsError",
    "TransactionScope",
    "UndefinedFunctionError",
    "UnreachableError",
    "check",
    "copy_in",
    "copy_out",
    "counters",
    "listen",
    "notify",
    "procedure",
    "query",
    "retried",
    "session",
    "transaction",
]

# Public classes and functions say they are pgdecor's, in reprs and tracebacks, wherever they are defined.
for _name in __all__:
    _public = globals()[_name]
    if isinstance(_public, type) or (callable(_public) and hasattr(_public, "__code__")):
        _public.__module__ = __name__
del _name, _public
