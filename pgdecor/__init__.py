"""pgdecor: call PostgreSQL stored functions and hand-written SQL through typed Python stubs."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

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
    Error,
    MappingError,
    NoSessionError,
    NotFoundError,
    RolledBackError,
    SignatureError,
    TooManyRowsError,
    UndefinedFunctionError,
)
from ._retries import Retry
from ._service import Database
from ._session import Session, TransactionScope, session, transaction
from ._signature import DEFAULT
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
    "ArgumentError",
    "AsyncCopyStream",
    "AsyncStream",
    "CommitUnknownError",
    "CopyStream",
    "CopyStub",
    "Counters",
    "Database",
    "Error",
    "MappingError",
    "NoSessionError",
    "NotFoundError",
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
    "check",
    "copy_in",
    "copy_out",
    "counters",
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
