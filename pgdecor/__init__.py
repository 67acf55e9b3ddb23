"""pgdecor: call PostgreSQL stored functions and hand-written SQL through typed Python stubs."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import _libpq  # noqa: F401 - first: psycopg without a libpq says what to install
from ._channels import Missed
from ._check import Problem, check
from ._copy import CopyStream
from ._copy_async import AsyncCopyStream
from ._copy_stubs import CopyStub, copy_in, copy_out
from ._counters import Counters, counters
from ._decorators import Stub, procedure, query
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
from ._listen import Listener
from ._listen_async import AsyncListener
from ._notify import listen, notify
from ._retries import Retry
from ._service import Database
from ._session import Session, TransactionScope, session, transaction
from ._signature import DEFAULT, Arg
from ._stream import Stream
from ._stream_async import AsyncStream
from ._units import retried

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
