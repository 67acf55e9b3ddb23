"""A borrowed connection's check, paid by its first statement.

A pool's check of a connection it hands out (an empty query, answered by the borrow's deadline: see
`_sources.pool_async`) costs a round trip per borrow. A connection given back less than `RECENT` seconds ago whose
socket has nothing to read (`quiet`: a server that ends a connection, or shuts down, says so on it first) is handed
out without it when its borrower is a call, which pays it: the connection is `owed` its check. The wire pays it by
sending a Flush after the BEGIN that goes with the call's statement, and waiting for BEGIN's answer no later than
the check would have (`_wire.liveness_async.answered`); anything else sent first has the check made as the pool
would have (`_session.lease_async`). Unanswered by then, the connection is closed, and the call raises as its
borrow would have: nothing it sent can commit.
"""

from __future__ import annotations

import select
import selectors
import weakref
from time import monotonic
from typing import Any, NamedTuple, Protocol

from psycopg import pq
from psycopg_pool import PoolTimeout

from pgdecor._errors import add_note

__all__ = ["RECENT", "Owed", "owed", "quiet", "returned", "unanswered"]


class Borrowing(Protocol):
    """What a borrow that went unanswered says (a `Database`'s options)."""

    @property
    def timeout(self) -> float: ...

    def timed_out(self, started: float, unanswered_at: float) -> str: ...


class Owed(NamedTuple):
    """A check owed: by when it must be answered, and what says it was not."""

    deadline: float
    borrowing: Borrowing


#: Seconds since a connection was given back within which its check is left to its first statement.
RECENT = 5.0

#: The connections (their libpq connection) whose borrow's check is owed.
owed: weakref.WeakKeyDictionary[Any, Owed] = weakref.WeakKeyDictionary()
#: When (`time.monotonic`) each connection was last given back by a session.
returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def quiet(pgconn: pq.abc.PGconn) -> bool:
    """Whether nothing waits to be read on *pgconn*'s socket (an idle connection's is quiet until the server says
    something: that it ends the connection, or shuts down): one poll(2), which opens no descriptor of its own."""
    if _poll is None:  # no poll(2) (Windows)
        with selectors.DefaultSelector() as selector:
            selector.register(pgconn.socket, selectors.EVENT_READ)
            return not selector.select(0)
    poller = _poll()
    poller.register(pgconn.socket, select.POLLIN)
    return not poller.poll(0)


_poll = getattr(select, "poll", None)


def unanswered(check: Owed) -> PoolTimeout:
    """What a call raises when the server did not answer the check its borrow left to it: what the borrow would have
    raised."""
    err = PoolTimeout(f"couldn't get a connection after {check.borrowing.timeout:.2f} sec")
    now = monotonic()
    add_note(err, check.borrowing.timed_out(now, now))
    return err
