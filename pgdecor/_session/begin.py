# Generated from pgdecor/_session/begin_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._session.begin_async`, generated from it: see there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import pq

from pgdecor._limits.deadlines import watchdog
from pgdecor._wire import internals, owed
from pgdecor._wire.wire_base import FOLDS, begin_for

from .lease import Lease

__all__ = ["beginning"]

_IDLE = pq.TransactionStatus.IDLE
_PIPELINE_OFF = pq.PipelineStatus.OFF


def beginning(lease: Lease, execute: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """``execute(*args, **kwargs)``, a method of one of *lease*'s cursors: where the session's transaction is
    yet to begin, its BEGIN goes with it, in one pipeline of psycopg's (libpq 14 and later), sent in autocommit
    (psycopg's own BEGIN would wait for its answer first); the transaction then ends as any (`end`). The
    pipeline's reads clear what they kept when they raise (`_wire.internals.unlink`): a server that ends the
    connection just after an error leaves no cycle for the collector; where this psycopg's reads cannot be
    made to, psycopg sends its BEGIN. The check the connection is owed is paid by BEGIN's answer (see the module
    docstring), or made first where no BEGIN goes."""
    conn = lease.conn
    folds = lease.pending and FOLDS and internals.unlinks() and conn.pgconn.pipeline_status == _PIPELINE_OFF
    begin = begin_for(conn) if folds else None
    if begin is None:
        lease.settle()
        execute(*args, **kwargs)
        return
    debt = owed.owed.pop(conn.pgconn, None)
    watch = None
    conn.set_autocommit(True)
    try:
        with conn.pipeline() as pipeline:
            internals.unlink(pipeline)
            began = conn.execute(begin)
            if debt is not None:
                conn.pgconn.send_flush_request()
                watch = watchdog.check(conn, debt.deadline, lambda: began.pgresult is not None)
            execute(*args, **kwargs)
    except psycopg.Error as err:
        if debt is not None and watch is not None and watchdog.done(watch):
            raise owed.unanswered(debt) from err
        raise
    finally:
        if watch is not None:
            watchdog.done(watch)
        if conn.info.transaction_status == _IDLE and not conn.closed:  # the BEGIN never ran: begun later, still
            conn.set_autocommit(False)
