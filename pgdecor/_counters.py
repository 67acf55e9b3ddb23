"""`Counters`: what sessions did with their connections, per `Database` and for the whole process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["Counters", "counters"]


@dataclass
class Counters:
    """What sessions did with their connections. ``borrowed == released`` once every session has ended, and
    ``released == committed + rolled_back + commit_unknown``; ``leaked`` counts sessions the leak guard had to end.
    ``commit_unknown`` counts sessions whose connection was lost during their COMMIT (see `CommitUnknownError`)."""

    borrowed: int = 0
    released: int = 0
    committed: int = 0
    rolled_back: int = 0
    commit_unknown: int = 0
    leaked: int = 0
    #: Times the lean call path turned itself off for the process (a self-test found it would differ from psycopg;
    #: the reason is logged). Not in `as_dict`, which counts sessions.
    wire_disabled: int = 0
    #: Runs of units of work that failed and ran again (`Database.run`, `retried`). Not in `as_dict` either.
    retried: int = 0
    #: Sessions given a token (`session(..., after=...)`) whose replica had not replayed that far at first, and those
    #: that read from the primary because it had not in time. Not in `as_dict` either.
    replica_waits: int = 0
    replica_fallbacks: int = 0
    #: Sessions given a token that was not sealed with their source's key for its cluster (forged, or another
    #: service's): ignored, as if none had been given. Not in `as_dict` either.
    tokens_rejected: int = 0
    #: Sessions whose readonly calls ran on the primary because the replica could not be reached (see
    #: `Database(replica_timeout=...)`). Not in `as_dict` either.
    replica_unreachable: int = 0
    #: Calls that took longer than their threshold (``Database(slow_call=...)``, a stub's ``slow=``), each logged
    #: at WARNING. Not in `as_dict` either.
    slow_calls: int = 0
    _parent: Counters | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)
        if self._parent is not None:
            self._parent.add(name)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {
                k: getattr(self, k)
                for k in ("borrowed", "released", "committed", "rolled_back", "commit_unknown", "leaked")
            }


#: The counters of every session in the process (each `Database` also has its own).
counters = Counters()
