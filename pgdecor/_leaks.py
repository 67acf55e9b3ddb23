"""The leak guard: the registry of sessions holding a borrowed connection, and ending those whose owner can no longer
end them (their thread died, their task finished, or they stayed idle in transaction past the leak timeout).

Every borrow from a `Database` or pool first looks for such orphans on the same source (`borrow_sync`,
`borrow_async`): they are rolled back, their connections given back, and reported with a `ResourceWarning`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import AsyncConnection, AsyncTransaction, Connection, Transaction, pq
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from ._database import Database, counters_for
from ._errors import RolledBackError
from ._sources import Source, begin_async, begin_sync, release_async, release_sync

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["borrow_async", "borrow_sync", "forget_all", "reap_async", "reap_sync", "track", "untrack", "warn_leak"]

logger = logging.getLogger("pgdecor")

#: Sessions holding a borrowed connection, by id: the leak guard looks for those whose owner is gone.
_live: dict[int, Session] = {}
_live_lock = threading.Lock()


def track(sess: Session) -> None:
    """Note a session that holds a borrowed connection."""
    with _live_lock:
        _live[id(sess)] = sess


def untrack(sess: Session) -> bool:
    """Forget a session that gave its connection back; False if the leak guard had ended it already."""
    with _live_lock:
        return _live.pop(id(sess), None) is not None


def forget_all() -> list[Session]:
    """In a forked child: the parent's sessions, forgotten (the lock is new: another thread may have held it)."""
    global _live_lock  # noqa: PLW0603 - no thread of the parent came along to release it
    _live_lock = threading.Lock()
    sessions = list(_live.values())
    _live.clear()
    return sessions


def borrow_sync(source: Source) -> tuple[Connection[Any], Transaction]:
    """A connection from *source*, its transaction begun, once the orphans on a pool have been ended."""
    if isinstance(source, (ConnectionPool, Database)):
        reap_sync(source)
    return begin_sync(source)


async def borrow_async(source: Source) -> tuple[AsyncConnection[Any], AsyncTransaction]:
    if isinstance(source, (AsyncConnectionPool, Database)):
        await reap_async(source)
    return await begin_async(source)


def warn_leak(sess: Session, why: str) -> None:
    counters_for(sess._source).add("leaked")
    msg = (
        f"pgdecor session opened at {sess._opened_at} was not ended by its block ({why}); its transaction "
        f"was rolled back and its connection given back"
    )
    logger.warning(msg)
    warnings.warn(msg, ResourceWarning, stacklevel=2)


def _orphans(source: Source) -> list[Session]:
    """Sessions on *source* holding a connection that nobody can end any more: their thread has died, their
    task has finished, or (with a leak timeout) their connection has been idle in transaction for that long."""
    timeout = source.leak_timeout if isinstance(source, Database) else None
    now = time.monotonic()
    with _live_lock:
        candidates = [s for s in _live.values() if s._source is source]
    found = []
    for s in candidates:
        owner = s._owner
        gone = not owner.is_alive() if isinstance(owner, threading.Thread) else owner is not None and owner.done()
        if gone or (timeout is not None and _idle_since(s, now) > timeout):
            with _live_lock:  # claim it: another borrower may be reaping it too
                if _live.pop(id(s), None) is None:
                    continue
            found.append(s)
    return found


def _idle_since(sess: Session, now: float) -> float:
    """Seconds the session's connection has been idle in transaction, as seen by successive leak checks (its
    cursors' last results have not changed): costs nothing on the per-call path."""
    conn = sess._conn
    if conn is None or conn.info.transaction_status != pq.TransactionStatus.INTRANS:
        sess._activity = None
        return 0.0
    cursors = (*sess._cursors.values(), *(stream._cursor for stream in sess._streams))
    seen = tuple(c.pgresult for c in cursors)
    if sess._activity is None or sess._activity[0] != seen:
        sess._activity = (seen, now)
        return 0.0
    return now - sess._activity[1]


def _reap_links(s: Session) -> list[tuple[Source, Any, Any]]:
    """Take the orphan's connections (and transactions) from it; it is ended for whoever still holds it."""
    s._ended = s._finished = True
    s._streams = []
    counters = counters_for(s._source)
    counters.add("released")
    counters.add("rolled_back")
    return s._detach()


_REAPED = RolledBackError("the session was ended by the leak guard")


def reap_sync(source: Source) -> int:
    """Roll back and give back the connections of orphaned sessions on *source*; return how many."""
    orphans = _orphans(source)
    for s in orphans:
        warn_leak(s, "its thread ended, or it stayed idle in transaction past the leak timeout")
        for src, conn, tx in _reap_links(s):
            with contextlib.suppress(psycopg.Error):  # a broken connection: the pool discards it
                tx.__exit__(RolledBackError, _REAPED, None)
            release_sync(src, conn)
    return len(orphans)


async def reap_async(source: Source) -> int:
    orphans = _orphans(source)
    for s in orphans:
        warn_leak(s, "its task ended, or it stayed idle in transaction past the leak timeout")
        for src, conn, tx in _reap_links(s):
            with contextlib.suppress(psycopg.Error):
                await tx.__aexit__(RolledBackError, _REAPED, None)
            await release_async(src, conn)
    return len(orphans)
