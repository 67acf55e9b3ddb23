# Generated from pgdecor/_wire/liveness_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._wire.liveness_async`, generated from it: see there."""

from __future__ import annotations

import selectors
from time import monotonic

import psycopg
from psycopg import pq

from .owed import Owed, owed, unanswered
from .shield import CANCEL_TIMEOUT

__all__ = ["answered", "check", "pay", "ready", "settle"]

_FATAL = pq.ExecStatus.FATAL_ERROR


def answered(pgconn: pq.abc.PGconn, debt: Owed) -> None:
    """Send what *pgconn* has to send and wait until its next result is in, by the deadline of the check it pays
    (*debt*); else close the connection and raise what the borrow would have (`PoolTimeout`). Cut short meanwhile
    (cancelled, interrupted), it still waits for that answer (by the same deadline, `CANCEL_TIMEOUT` at most) before
    it raises: what stops the statement sent needs a server that answers; one that does not has its connection
    closed then."""
    try:
        _in(pgconn, debt.deadline)
    except psycopg.errors.ConnectionTimeout as err:
        pgconn.finish()
        raise unanswered(debt) from err
    except GeneratorExit:  # closed, never to run again: nothing can wait
        pgconn.finish()
        raise
    except BaseException:
        try:
            _in(pgconn, min(debt.deadline, monotonic() + CANCEL_TIMEOUT))
        except BaseException:  # noqa: BLE001 - unanswered, or broken: the connection cannot be stopped, only closed
            pgconn.finish()
        raise


def settle(pgconn: pq.abc.PGconn) -> None:
    """Make the check *pgconn* is owed, if it is (`_wire.owed`), before anything else is sent on it (`pay`)."""
    if (debt := owed.pop(pgconn, None)) is not None:
        pay(pgconn, debt)


def pay(pgconn: pq.abc.PGconn, debt: Owed) -> None:
    """Make the check a connection is owed (*debt*) as the pool would have (an empty query, answered by its
    deadline): else close the connection and raise what the borrow would have (`PoolTimeout`)."""
    pgconn.send_query(b"")
    answered(pgconn, debt)
    _read(pgconn)


def check(pgconn: pq.abc.PGconn, deadline: float) -> None:
    """Raise unless *pgconn* answers an empty query by *deadline* (a `time.monotonic` time): `ConnectionTimeout`,
    or the server's error."""
    pgconn.send_query(b"")
    _in(pgconn, deadline)
    _read(pgconn)


def _read(pgconn: pq.abc.PGconn) -> None:
    """Read the answer to a check; raise if it is an error."""
    failed = None
    while (res := pgconn.get_result()) is not None:
        if res.status == _FATAL:
            failed = res.error_message
    if failed is not None:
        raise psycopg.OperationalError(failed.decode(errors="replace").strip())


def _in(pgconn: pq.abc.PGconn, deadline: float) -> None:
    """Send what *pgconn* has to send, and wait until its next result is in, by *deadline*."""
    while pgconn.flush():
        ready(pgconn.socket, deadline, write=True)
    pgconn.consume_input()
    while pgconn.is_busy():
        ready(pgconn.socket, deadline, write=False)
        pgconn.consume_input()


def ready(fd: int, deadline: float, *, write: bool) -> None:
    """Wait until the socket *fd* is readable (or writable); raise `ConnectionTimeout` at *deadline*."""
    timeout = max(deadline - monotonic(), 0.0)
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_WRITE if write else selectors.EVENT_READ)
        ready = bool(selector.select(timeout))
    if not ready:
        msg = "the server did not answer the connection's check in time"
        raise psycopg.errors.ConnectionTimeout(msg)
