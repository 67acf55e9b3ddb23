# Generated from pgdecor/_session/begin_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._session.begin_async`, generated from it: see there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import Cursor, pq

from pgdecor._limits.deadlines import watchdog
from pgdecor._wire import internals, owed
from pgdecor._wire.wire_base import FOLDS, begin_for

from .lease import Lease

__all__ = ["beginning"]

_IDLE = pq.TransactionStatus.IDLE
_PIPELINE_OFF = pq.PipelineStatus.OFF


def beginning(
    lease: Lease, execute: Callable[..., Any], sql: str, params: Any, *, batch: bool = False, **kwargs: Any
) -> None:
    """``execute(sql, params, **kwargs)``, a method of one of *lease*'s cursors (*batch*: ``executemany``, its
    *params* a list of parameter sets): where the session's transaction is yet to begin, its BEGIN goes with it, in
    one pipeline of psycopg's (libpq 14 and later), sent in autocommit (psycopg's own BEGIN would wait for its answer
    first); the transaction then ends as any (`end`). The pipeline's reads clear what they kept when they raise
    (`_wire.internals.unlink`): a server that ends the connection just after an error leaves no cycle for the
    collector; where this psycopg's reads cannot be made to, psycopg sends its BEGIN. The check the connection is
    owed is paid by BEGIN's answer where the statement goes at once (`_wire.owed.light`), else made first (see the
    module docstring)."""
    conn = lease.conn
    folds = lease.pending and FOLDS and internals.unlinks() and conn.pgconn.pipeline_status == _PIPELINE_OFF
    begin = begin_for(conn) if folds else None
    if begin is None or not owed.light(params, sets=batch):
        lease.settle()
    if begin is None:
        execute(sql, params, **kwargs)
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
                watch = watchdog.check(conn, debt.deadline, _answered(began, conn.pgconn))
            execute(sql, params, **kwargs)
    except psycopg.Error as err:
        if debt is not None and watch is not None and watchdog.done(watch):
            raise owed.unanswered(debt) from err
        raise
    finally:
        ended = watch is not None and watchdog.done(watch)
        if conn.info.transaction_status == _IDLE and not conn.closed:  # the BEGIN never ran: begun later, still
            conn.set_autocommit(False)
    if debt is not None and ended:  # the watchdog ended the connection as its results came: nothing can commit
        raise owed.unanswered(debt)


def _answered(began: Cursor[Any], pgconn: pq.abc.PGconn) -> Callable[[], bool]:
    """What tells the watchdog the server answered the BEGIN *began* sent: its result read, or something waiting to
    be read on the socket (a task that holds the event loop reads it late)."""

    def answered() -> bool:
        try:
            return began.pgresult is not None or not owed.quiet(pgconn)
        except Exception:  # noqa: BLE001 - closed meanwhile: the call has ended, nothing to end
            return True

    return answered
