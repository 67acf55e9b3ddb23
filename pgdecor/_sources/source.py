"""`Source`: what a session knows of where its connections come from, whatever the kind of source (a conninfo
string, a pool, a `Database`, a connection of the user's). The kind is told once, when a session is made
(`_sources.kinds.source_for`); below that, nothing asks it again. Each kind derives from `BaseSource`, which
answers as most kinds do, and states only what differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pgdecor._counters import counters as process_counters

from .replicas import REPLICA_TIMEOUT, REPLICA_WAIT, Tokens, process_tokens

if TYPE_CHECKING:
    from psycopg import AsyncConnection, Connection

    from pgdecor._counters import Counters

    from .guard import LeakGuard
    from .replicas import Health

__all__ = ["DEFAULT_SETTINGS", "BaseSource", "Settings", "Source"]


@dataclass(frozen=True)
class Settings:
    """What a source's sessions are given, besides connections: a `Database` takes them as options."""

    #: Seconds an async session given a commit token waits for the replica to replay that far.
    replica_wait: float = REPLICA_WAIT
    #: Seconds a session waits for a connection to the replica before it reads from the primary.
    replica_timeout: float = REPLICA_TIMEOUT
    #: Seconds above which a call is logged and counted as slow (see `_limits.slow`); None: never.
    slow_call: float | None = None
    #: The key that seals and opens the sessions' commit tokens (see `_sources.replicas.Tokens`).
    tokens: Tokens = process_tokens


#: The settings of sources that bring none of their own (all but a `Database`).
DEFAULT_SETTINGS = Settings()


class Source(Protocol):
    """Where a session's connections come from: connecting (borrowing) and giving back, for each kind of session,
    and what sessions on it share (counters, the leak guard, a replica)."""

    @property
    def key(self) -> object:
        """What tells sources apart: a session opened inside another on a source of an equal key joins it."""
        ...

    @property
    def counters(self) -> Counters:
        """What the sessions on the source did (see `pgdecor.Counters`)."""
        ...

    @property
    def guard(self) -> LeakGuard:
        """The leak guard of the sessions that borrowed from the source."""
        ...

    @property
    def replica(self) -> Source | None:
        """The replica the source brings (a `Database`'s), if any."""
        ...

    @property
    def health(self) -> Health:
        """Whether the source, as a replica, can be reached."""
        ...

    @property
    def settings(self) -> Settings: ...

    @property
    def configured(self) -> bool:
        """Whether pgdecor configured the connections it hands out (else it probes each once, at its first use)."""
        ...

    @property
    def lent(self) -> bool:
        """Whether the session's connection is the user's own, lent as it is (its adapters, its transaction)."""
        ...

    def describe(self) -> str:
        """The source, for messages: never a secret."""
        ...

    def serves(self, *, is_async: bool) -> bool:
        """Whether the source serves sessions of that kind."""
        ...

    def own_connection(self, what: str) -> tuple[str, dict[str, Any]]:
        """The conninfo and options of a connection of its own (a listener's); `ArgumentError` naming *what* for a
        source that only lends connections."""
        ...

    async def aconnect(self, timeout: float | None) -> AsyncConnection[Any]:
        """A connection for an async session, within *timeout* seconds if given; its failure noted with where it
        tried."""
        ...

    async def agive_back(self, conn: AsyncConnection[Any]) -> None:
        """Give back a connection `aconnect` gave, its transaction ended."""
        ...

    def connect(self, timeout: float | None) -> Connection[Any]:
        """`aconnect`, for a sync session."""
        ...

    def give_back(self, conn: Connection[Any]) -> None:
        """`agive_back`, for a sync session."""
        ...


class BaseSource:
    """A `Source`'s answers where its kind has nothing of its own to say: the process's counters and settings, no
    replica, connections pgdecor configured and that are not the user's, sessions of both kinds, and itself as its
    key."""

    __slots__ = ()

    counters: Counters = process_counters
    settings: Settings = DEFAULT_SETTINGS
    configured = True
    lent = False

    @property
    def key(self) -> object:
        return self

    @property
    def replica(self) -> Source | None:
        return None

    def serves(self, *, is_async: bool) -> bool:  # noqa: ARG002 - both kinds
        return True
