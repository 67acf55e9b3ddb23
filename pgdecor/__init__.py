"""pgdecor: call PostgreSQL stored functions and hand-written SQL through typed Python stubs."""

from ._check import Problem, check
from ._database import Counters, Database, counters
from ._decorators import Stub, procedure, query
from ._errors import (
    AmbiguousFunctionError,
    ArgumentError,
    Error,
    MappingError,
    NoSessionError,
    NotFoundError,
    RolledBackError,
    SignatureError,
    TooManyRowsError,
    UndefinedFunctionError,
)
from ._session import Session, TransactionScope, session, transaction
from ._signature import DEFAULT
from ._streams import AsyncStream, Stream

__all__ = [
    "DEFAULT",
    "AmbiguousFunctionError",
    "ArgumentError",
    "AsyncStream",
    "Counters",
    "Database",
    "Error",
    "MappingError",
    "NoSessionError",
    "NotFoundError",
    "Problem",
    "RolledBackError",
    "Session",
    "SignatureError",
    "Stream",
    "Stub",
    "TooManyRowsError",
    "TransactionScope",
    "UndefinedFunctionError",
    "check",
    "counters",
    "procedure",
    "query",
    "session",
    "transaction",
]
