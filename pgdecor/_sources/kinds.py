"""The kinds of source a session takes, and `source_for`, the one place that tells them apart: whatever is given
where a source enters (`session`, `Database.session`, the middleware, units of work, listeners) is made once
into one of the `Source` classes, and nothing below asks its kind again.

- a `Database`: its own source (`_sources.database.DatabaseSource`), pools of both kinds;
- a conninfo string (`ConninfoSource`): a connection opened for the session and closed after it;
- a psycopg_pool pool of the user's (`_sources.users`): borrowed from, and given back;
- a psycopg connection of the user's (`_sources.users`): used as it is, inside a transaction or savepoint of its
  own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, Union

from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pgdecor._counters import counters
from pgdecor._errors import ArgumentError
from pgdecor._secrets import described

from . import conninfo as conninfo_sync
from . import conninfo_async
from .config import DatabaseConfig, check_conninfo, where
from .guard import LeakGuard
from .replicas import Health, health_of
from .source import BaseSource, Source
from .user_objects import ConnectionSource, PoolSource
from .user_objects_async import AsyncConnectionSource, AsyncPoolSource

__all__ = ["ConninfoSource", "Given", "source_for"]

#: What may be given as a session's source (see `pgdecor.session`): `DatabaseConfig` is what `pgdecor.Database`
#: is below the service.
Given: TypeAlias = Union[
    DatabaseConfig,
    str,
    "Connection[Any]",
    "AsyncConnection[Any]",
    "ConnectionPool[Any]",
    "AsyncConnectionPool[Any]",
]


class ConninfoSource(BaseSource):
    """A conninfo string: each session opens a connection of its own, of its kind, and closes it at its end."""

    __slots__ = ("_conninfo", "guard")

    def __init__(self, what: str, conninfo: str) -> None:
        check_conninfo(what, conninfo)
        self._conninfo = conninfo
        self.guard = LeakGuard(counters)

    @property
    def key(self) -> object:
        return self._conninfo  # sessions on equal strings are on one source

    @property
    def health(self) -> Health:
        return health_of(self._conninfo, where(self._conninfo))

    def describe(self) -> str:
        return conninfo_async.DESCRIBED

    def own_connection(self, what: str) -> tuple[str, dict[str, Any]]:  # noqa: ARG002 - always
        return self._conninfo, {}

    async def aconnect(self, timeout: float | None) -> AsyncConnection[Any]:
        return await conninfo_async.aconnected(self._conninfo, timeout)

    async def agive_back(self, conn: AsyncConnection[Any]) -> None:
        await conn.close()

    def connect(self, timeout: float | None) -> Connection[Any]:
        return conninfo_sync.connected(self._conninfo, timeout)

    def give_back(self, conn: Connection[Any]) -> None:
        conn.close()


def _database(what: str, db: DatabaseConfig) -> Source:  # noqa: ARG001 - checked when it was made
    return db._source


#: Each kind of source, and what makes it a `Source`, in the order they are told apart (a `Database` first: the
#: most common). The `isinstance` in `source_for` is what gives each maker the type it takes.
_KINDS: tuple[tuple[type[Any], Callable[[str, Any], Source]], ...] = (
    (DatabaseConfig, _database),
    (str, ConninfoSource),
    (AsyncConnectionPool, lambda _, pool: AsyncPoolSource(pool)),
    (ConnectionPool, lambda _, pool: PoolSource(pool)),
    (AsyncConnection, lambda _, conn: AsyncConnectionSource(conn)),
    (Connection, lambda _, conn: ConnectionSource(conn)),
)

#: The kinds accepted, as messages name them.
_ACCEPTED = (
    "a Database, a conninfo string, a psycopg Connection or AsyncConnection, or a psycopg_pool ConnectionPool or "
    "AsyncConnectionPool"
)

#: What takes the objects of the libraries whose connections sessions join, by the package they come from.
_JOINED_BY = {
    "sqlalchemy": "pgdecor.sqlalchemy.session(...) (asession(...) for async) opens one on SQLAlchemy's connection",
    "django": "pgdecor.django.session() opens one on Django's connection",
}


def source_for(what: str, given: object) -> Source:
    """The source a session takes *given* for (see the module docstring); `ArgumentError` naming *what* (the
    function given it) and the kinds it takes for anything else."""
    for kind, make in _KINDS:
        if isinstance(given, kind):
            return make(what, given)
    msg = f"{what} takes {_ACCEPTED}; not {described(given)}"
    joined_by = _JOINED_BY.get(type(given).__module__.partition(".")[0])
    if joined_by is not None:
        msg += f"; {joined_by}"
    raise ArgumentError(msg)
