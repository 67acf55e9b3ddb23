"""The leak guard: each source's registry of the sessions holding a connection borrowed from it, and finding those
whose owner can no longer end them (their thread died, their task finished, or they stayed idle in transaction
past the source's leak timeout).

Every borrow first has such orphans on the same source ended (`_session.scope_async.areap`): they are rolled back,
their connections given back, and reported with a `ResourceWarning`. The guard sees sessions through `Guarded`
only, and does no I/O. In a forked child, the sessions open at the fork are the parent's: each is told so
(`Guarded.forget_forked`) and forgotten.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Protocol, TypeVar

from typing_extensions import TypeIs

from pgdecor._counters import Counters

from . import fork as forked

__all__ = ["Guarded", "LeakGuard", "pool_guard"]

logger = logging.getLogger("pgdecor")


class Guarded(Protocol):
    """What the leak guard sees of a session that holds a borrowed connection."""

    @property
    def opened_at(self) -> str:
        """Where the session was opened (file:line), for the warning."""
        ...

    @property
    def is_async(self) -> bool:
        """Whether the session was entered with ``async with``: each kind's borrowers end their own kind's."""
        ...

    def owner_gone(self) -> bool:
        """Whether the thread or task that entered the session has ended."""
        ...

    def activity(self) -> tuple[object, ...] | None:
        """The last results its connection's cursors and streams read, while it is in a transaction (None
        otherwise): unchanged between two looks, the connection was idle in transaction meanwhile."""
        ...

    def forget_forked(self) -> None:
        """In a forked child: the session is the parent's; end it here without a word to the server."""
        ...


G = TypeVar("G", bound=Guarded)

#: Held while a guard's registry changes (one for all: a forked child makes a new one, see `_forget_after_fork`).
_lock = threading.Lock()

#: Every guard, for a forked child to forget their sessions.
_guards: weakref.WeakSet[LeakGuard] = weakref.WeakSet()


class LeakGuard:
    """The sessions holding a connection borrowed from one source, and those of them nobody can end any more."""

    __slots__ = ("__weakref__", "_live", "_seen", "counters", "timeout")

    def __init__(self, counters: Counters, timeout: float | None = None) -> None:
        self.counters = counters
        #: Seconds a session may stay idle in transaction before it is taken as orphaned; None: never.
        self.timeout = timeout
        #: The sessions holding a borrowed connection, by id.
        self._live: dict[int, Guarded] = {}
        #: What the guard saw of each session's activity, and when (`time.monotonic`).
        self._seen: dict[int, tuple[tuple[object, ...], float]] = {}
        _guards.add(self)

    def track(self, sess: Guarded) -> None:
        """Note a session that holds a borrowed connection."""
        with _lock:
            self._live[id(sess)] = sess

    def untrack(self, sess: Guarded) -> bool:
        """Forget a session that gave its connection back; False if the guard had ended it already."""
        with _lock:
            self._seen.pop(id(sess), None)
            return self._live.pop(id(sess), None) is not None

    def orphans(self, kind: Callable[[Guarded], TypeIs[G]]) -> list[G]:
        """The sessions of *kind* (sync or async: each kind ends its own) holding a connection that nobody can end
        any more: their thread has died, their task has finished, or (with a timeout) their connection has been
        idle in transaction for that long. Each is claimed (untracked) here, so that another borrower reaping at
        the same time does not end it too."""
        now = time.monotonic()
        with _lock:
            candidates = [s for s in self._live.values() if kind(s)]
        found = []
        for s in candidates:
            if s.owner_gone() or (self.timeout is not None and self._idle_since(s, now) > self.timeout):
                with _lock:
                    if self._live.pop(id(s), None) is None:
                        continue
                    self._seen.pop(id(s), None)
                found.append(s)
        return found

    def warn(self, sess: Guarded, why: str) -> None:
        """Count and report a session that was not ended by its block, and why."""
        self.counters.add("leaked")
        msg = (
            f"pgdecor session opened at {sess.opened_at} was not ended by its block ({why}); its transaction "
            f"was rolled back and its connection given back"
        )
        logger.warning(msg)
        warnings.warn(msg, ResourceWarning, stacklevel=2)

    def _idle_since(self, sess: Guarded, now: float) -> float:
        """Seconds the session's connection has been idle in transaction, as seen by successive looks (its last
        results have not changed): costs nothing on the per-call path."""
        seen = sess.activity()
        key = id(sess)
        if seen is None:
            self._seen.pop(key, None)
            return 0.0
        last = self._seen.get(key)
        if last is None or last[0] != seen:
            self._seen[key] = (seen, now)
            return 0.0
        return now - last[1]


#: The guards of the user's pools, by pool: every session on a pool shares its guard, whatever source object it
#: was given through.
_pool_guards: weakref.WeakKeyDictionary[object, LeakGuard] = weakref.WeakKeyDictionary()


def pool_guard(pool: object, counters: Counters) -> LeakGuard:
    """The leak guard of the sessions on the user's pool *pool*."""
    found = _pool_guards.get(pool)
    if found is None:
        with _lock:
            found = _pool_guards.setdefault(pool, LeakGuard(counters))
    return found


def _forget_after_fork() -> None:
    """In a forked child: the sessions open at the fork are the parent's (the lock is new: another thread may have
    held it)."""
    global _lock  # noqa: PLW0603 - no thread of the parent came along to release it
    _lock = threading.Lock()
    for guard in list(_guards):
        held = list(guard._live.values())
        guard._live.clear()
        guard._seen.clear()
        for sess in held:
            sess.forget_forked()


forked.on_fork(_forget_after_fork)
