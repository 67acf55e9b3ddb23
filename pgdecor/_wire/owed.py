"""A borrowed connection's check, paid by its first statement.

A pool's check of a connection it hands out (an empty query, answered by the borrow's deadline: see
`_sources.pool_async`) costs a round trip per borrow. A connection given back less than `RECENT` seconds ago whose
socket has nothing to read (`quiet`: a server that ends a connection, or shuts down, says so on it first) is handed
out without it when its borrower is a call, which pays it: the connection is `owed` its check. The wire pays it by
sending a Flush after the BEGIN that goes with the call's statement, and waiting for BEGIN's answer no later than
the check would have (`_wire.liveness_async.answered`); anything else sent first has the check made as the pool
would have (`_session.lease_async`). Unanswered by then, the connection is closed, and the call raises as its
borrow would have: nothing it sent can commit. A statement whose parameters take time to send (not `light`) has the
check made first too: the answer to its BEGIN might come only once it is sent, after the check's deadline.
"""

from __future__ import annotations

import select
import selectors
import weakref
from collections.abc import Mapping
from datetime import date, time, timedelta
from decimal import Decimal
from time import monotonic
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from psycopg import pq
from psycopg_pool import PoolTimeout

from pgdecor._errors import add_note

__all__ = ["RECENT", "Owed", "light", "owed", "quiet", "returned", "unanswered"]


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


#: The most the parameters of a statement whose BEGIN's answer pays the connection's check may weigh, in bytes: one
#: that takes longer to send than the check has left would be taken for a server that does not answer (`light`).
_LIGHT = 8192
#: What a parameter may be, other than None or a short str or bytes, for its statement to count as light.
_SCALARS = (int, float, Decimal, UUID, date, time, timedelta)


def light(params: Any, *, sets: bool) -> bool:
    """Whether *params* (a statement's parameters, or with *sets* a batch's sets of them) surely go at once: numbers,
    dates and short strings, `_LIGHT` bytes at most in all. Anything else (a document, an array, a composite) is
    sent after a check of its own."""
    budget = _LIGHT
    for values in params if sets else (params,):
        for value in values.values() if isinstance(values, Mapping) else values:
            if isinstance(value, (str, bytes)):
                budget -= len(value)
            elif value is not None and not isinstance(value, _SCALARS):
                return False
            budget -= 16
            if budget < 0:
                return False
    return True
