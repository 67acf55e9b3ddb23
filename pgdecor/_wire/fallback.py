"""What the sync wire does when psycopg's wait, which drives its generators (`_wire.generators`), raises or answers
in another shape once a statement was sent: wires off, naming it, and the statement's results read with libpq's
public calls and the standard library's selectors, so that the call still returns them; never a statement sent
twice. The async wire waits on the event loop by itself, and never needs it.
"""

from __future__ import annotations

import inspect
import selectors
from typing import TypeVar

import psycopg
from psycopg import pq

from . import internals
from .generators import PSYCOPG, Reading, results
from .guard import drifted
from .internals import Drift

__all__ = ["drive", "read_after"]

_ACTIVE = pq.TransactionStatus.ACTIVE
T = TypeVar("T")


def read_after(pgconn: pq.abc.PGconn, err: Exception, what: str, gen: Reading[T], *, probing: bool) -> T:
    """After psycopg's wait, *what*, raised *err* while driving *gen* on a statement sent: wires off, naming it, and
    what *gen* reads read by `drive`. Where *gen* had run to its end (its results lost to the changed psycopg), the
    connection is closed, as if it had broken (whether the statement ran is unknown; it is never sent again), and
    psycopg's `OperationalError` raised; while *probing* (the self-test's statement), `Drift`: its savepoint is
    rolled back, the connection is sound."""
    drift = err if isinstance(err, Drift) else Drift(what, err)
    drifted(drift)
    if inspect.getgeneratorstate(gen) != inspect.GEN_CLOSED:
        return drive(pgconn, gen)
    if probing:
        if pgconn.transaction_status == _ACTIVE:
            drive(pgconn, results(pgconn, PSYCOPG))
        raise drift
    pgconn.finish()
    msg = (
        f"pgdecor closed the connection: {drift.what} failed after the statement was sent, and its result is "
        f"lost (psycopg {psycopg.__version__}); whether the statement ran is unknown"
    )
    raise psycopg.OperationalError(msg) from err


def drive(pgconn: pq.abc.PGconn, gen: Reading[T]) -> T:
    """Run *gen*, a generator of waits of ours (new, or left half-way by psycopg's wait), on the connection's
    socket with the standard library's selectors alone."""
    fd = pgconn.socket
    with selectors.DefaultSelector() as selector:
        try:
            # Told "nothing ready", one left half-way asks again what it waits for.
            wait = next(gen) if inspect.getgeneratorstate(gen) == inspect.GEN_CREATED else gen.send(0)
            while True:
                assert isinstance(wait, int)  # psycopg's values, as the sync wire's generators yield them
                events = (selectors.EVENT_READ if wait & internals.WAIT_R else 0) | (
                    selectors.EVENT_WRITE if wait & internals.WAIT_W else 0
                )
                selector.register(fd, events)
                mask = sum(ready for _, ready in selector.select())
                selector.unregister(fd)
                ready = (internals.READY_R if mask & selectors.EVENT_READ else 0) | (
                    internals.READY_W if mask & selectors.EVENT_WRITE else 0
                )
                wait = gen.send(ready)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
