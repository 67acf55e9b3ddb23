"""Borrowing from a replica: a connection to a standby that has replayed the writes of the session whose commit token
a session was given (see `_sources.replicas`), or None where it has not in time.

This is the async source; `_session.replica` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from psycopg import AsyncConnection

from pgdecor._acompat import apause
from pgdecor._sources.replicas import AHEAD, LOOK, waits
from pgdecor._sources.source import Source

from .lease_async import AsyncLease
from .modes import Mode

__all__ = ["Replica", "borrow_replica"]


class Replica(NamedTuple):
    """What came of borrowing from a replica (see `borrow_replica`)."""

    lease: AsyncLease | None
    waited: bool
    rejected: bool


async def borrow_replica(source: Source, mode: Mode, after: str | None, bound: float, primary: Source) -> Replica:
    """`borrow` from the replica *source*, waiting at most `replica_timeout` for a connection; given the token
    *after* (see `replicas`), once the replica has replayed that far and before its transaction begins (whose
    snapshot must see that far). An async session looks again for up to *bound* seconds, giving the
    connection back between looks. What came of it: the lease, or None (the connection given back) if the
    replica is behind; whether it had to wait; whether the token was rejected, the replica then used as if
    there were none: not sealed with the source's key for this cluster, or, before any wait, beyond the
    position of *primary* (a token from a past the cluster no longer has: a failover that lost writes, a
    restored backup), which no replica would ever reach."""
    timeout = source.settings.replica_timeout
    pauses = waits(bound) if after is not None else []
    tokens = source.settings.tokens
    for look, delay in enumerate([0.0, *pauses]):
        if delay:
            await apause(delay)
        conn = await source.aconnect(timeout)
        try:
            caught_up = rejected = True
            if after is not None:
                position = tokens.position(after)
                caught_up, cluster = await _looked(conn, position)
                rejected = not tokens.opens(after, cluster)
                if not (caught_up or rejected or delay) and pauses:
                    rejected = await _beyond(primary, position)
            if rejected or caught_up:
                return Replica(await AsyncLease.made(source, conn, mode), look > 0, rejected and after is not None)
        except BaseException:
            await source.agive_back(conn)
            raise
        await source.agive_back(conn)
    return Replica(None, bool(pauses), False)


async def _beyond(primary: Source, position: str) -> bool:
    """Whether *position* is beyond the write-ahead log of *primary* (asked on a connection of its own: the
    session's transaction has not begun there)."""
    if primary.lent:  # the user's connection, in a transaction of theirs: not asked
        return False
    conn = await primary.aconnect(None)
    try:
        row = await (await conn.execute(AHEAD, [position])).fetchone()
    finally:
        await primary.agive_back(conn)
    return bool(row and row[0])


async def _looked(conn: AsyncConnection[Any], position: str) -> tuple[bool, int]:
    """Whether the replica *conn* has replayed past *position*, and its cluster's identifier. A connection not in
    autocommit is not asked (asking would begin its transaction): it is taken as behind."""
    if not conn.autocommit:
        return False, 0
    row = await (await conn.execute(LOOK, [position])).fetchone()
    assert row is not None
    return bool(row[0]), int(row[1])
