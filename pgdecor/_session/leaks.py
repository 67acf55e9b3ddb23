"""The leak guard: the registry of sessions holding a borrowed connection, and finding those whose owner can no
longer end them (their thread died, their task finished, or they stayed idle in transaction past the leak
timeout).

Every borrow from a `Database` or pool first has such orphans on the same source ended (`_session.lease_async.reap`):
they are rolled back, their connections given back, and reported with a `ResourceWarning`. No I/O here.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from typing import TYPE_CHECKING

from psycopg import pq

from pgdecor._sources.config import DatabaseBase, counters_for
from pgdecor._sources.kinds import Source

if TYPE_CHECKING:
    from .state import SessionState

__all__ = ["forget_all", "orphans", "track", "untrack", "warn_leak"]

logger = logging.getLogger("pgdecor")

_INTRANS = pq.TransactionStatus.INTRANS

#: Sessions holding a borrowed connection, by id: the leak guard looks for those whose owner is gone.
_live: dict[int, SessionState] = {}
_live_lock = threading.Lock()


def track(sess: SessionState) -> None:
    """Note a session that holds a borrowed connection."""
    with _live_lock:
        _live[id(sess)] = sess


def untrack(sess: SessionState) -> bool:
    """Forget a session that gave its connection back; False if the leak guard had ended it already."""
    with _live_lock:
        return _live.pop(id(sess), None) is not None


def forget_all() -> list[SessionState]:
    """In a forked child: the parent's sessions, forgotten (the lock is new: another thread may have held it)."""
    global _live_lock  # noqa: PLW0603 - no thread of the parent came along to release it
    _live_lock = threading.Lock()
    sessions = list(_live.values())
    _live.clear()
    return sessions


def warn_leak(sess: SessionState, why: str) -> None:
    counters_for(sess.source).add("leaked")
    msg = (
        f"pgdecor session opened at {sess.opened_at} was not ended by its block ({why}); its transaction "
        f"was rolled back and its connection given back"
    )
    logger.warning(msg)
    warnings.warn(msg, ResourceWarning, stacklevel=2)


def orphans(source: Source) -> list[SessionState]:
    """Sessions on *source* holding a connection that nobody can end any more: their thread has died, their
    task has finished, or (with a leak timeout) their connection has been idle in transaction for that long.
    Each is claimed (untracked) here, so that another borrower reaping at the same time does not end it too."""
    timeout = source.leak_timeout if isinstance(source, DatabaseBase) else None
    now = time.monotonic()
    with _live_lock:
        candidates = [s for s in _live.values() if s.source is source]
    found = []
    for s in candidates:
        if s.owner_gone() or (timeout is not None and _idle_since(s, now) > timeout):
            with _live_lock:
                if _live.pop(id(s), None) is None:
                    continue
            found.append(s)
    return found


def _idle_since(sess: SessionState, now: float) -> float:
    """Seconds the session's connection has been idle in transaction, as seen by successive leak checks (its
    cursors' last results have not changed): costs nothing on the per-call path."""
    lease = sess.lease
    if lease is None or lease.conn.info.transaction_status != _INTRANS:
        sess.activity = None
        return 0.0
    seen = (*lease.results(), *(stream._cursor.pgresult for stream in sess.open_streams))
    if sess.activity is None or sess.activity[0] != seen:
        sess.activity = (seen, now)
        return 0.0
    return now - sess.activity[1]
