"""A session's BEGIN sent with the first statement of its cursors, in the same round trip (`beginning`); its wire's
go with their own (`_wire.wire_async`).

The answer to that BEGIN pays the check its borrow left to the call (`_wire.owed`), as it does on the wire: a Flush
goes after it, so that the server answers it at once, whatever the statement after it takes, and the watchdog of
deadlines (`_limits.deadlines.Watchdog.check`) shuts the connection down should the answer not be in by the check's
deadline. The call then raises what its borrow would have (`PoolTimeout`), and nothing it sent can commit.

This is the async source; `_session.begin` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import pq

from pgdecor._limits.deadlines import watchdog
from pgdecor._wire import internals, owed
from pgdecor._wire.wire_base import FOLDS, begin_for

from .lease_async import AsyncLease

__all__ = ["beginning"]

_IDLE = pq.TransactionStatus.IDLE
_PIPELINE_OFF = pq.PipelineStatus.OFF


async def beginning(lease: AsyncLease, execute: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
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
        await lease.settle()
        await execute(*args, **kwargs)
        return
    debt = owed.owed.pop(conn.pgconn, None)
    watch = None
    await conn.set_autocommit(True)
    try:
        async with conn.pipeline() as pipeline:
            internals.unlink(pipeline)
            began = await conn.execute(begin)
            if debt is not None:
                conn.pgconn.send_flush_request()
                watch = watchdog.check(conn, debt.deadline, lambda: began.pgresult is not None)
            await execute(*args, **kwargs)
    except psycopg.Error as err:
        if debt is not None and watch is not None and watchdog.done(watch):
            raise owed.unanswered(debt) from err
        raise
    finally:
        if watch is not None:
            watchdog.done(watch)
        if conn.info.transaction_status == _IDLE and not conn.closed:  # the BEGIN never ran: begun later, still
            await conn.set_autocommit(False)
