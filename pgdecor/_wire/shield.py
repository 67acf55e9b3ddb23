"""Awaiting work that must run to its end although the awaiting task is cancelled.

Ending a transaction, or reading what remains of a statement the server was asked to stop, must not be cut
short: a connection left half-way is unusable, and psycopg closes it. `asyncio.shield` alone is not enough under
anyio (Starlette, FastAPI), whose cancel scopes cancel the task again at every await until it leaves the scope;
`finish` keeps waiting through every such cancellation, then re-raises one, and stops a cancelled statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from psycopg import AsyncConnection, pq

T = TypeVar("T")

logger = logging.getLogger("pgdecor")


#: Seconds to wait for the server to stop a statement whose task was cancelled, as psycopg does.
CANCEL_TIMEOUT = 5.0

_ACTIVE = pq.TransactionStatus.ACTIVE


async def finish(coro: Coroutine[Any, Any, T], *, statement_on: AsyncConnection[Any] | None = None) -> T:
    """Run *coro* to its end in a task of its own, even if the caller is cancelled (repeatedly) meanwhile; then
    return its result, or raise its error; a cancellation that arrived meanwhile is raised after it ends.

    *coro* may be a statement running on the connection *statement_on*: then a cancellation also has the server
    stop it (psycopg's ``cancel_safe``), so that the connection stays usable (its transaction aborted) instead of
    being closed half-way through a result, as psycopg does when cancelled again while it drains. Should the
    server not stop it in time, the task is cancelled after all, and psycopg closes the connection."""
    task = asyncio.ensure_future(coro)
    #: The arguments of the first cancellation that arrived meanwhile (anyio's cancel scopes tell their own by its
    #: message), to raise it again once the work has ended; None while none has.
    cancelled: tuple[Any, ...] | None = None
    #: The request to the server to stop the statement: made only while it runs, since a request arriving once the
    #: statement has ended would stop whatever the connection runs next.
    stop: asyncio.Task[None] | None = None
    deadline: float | None = None
    loop = asyncio.get_running_loop()
    while not task.done():
        try:
            if cancelled is None:
                await asyncio.shield(task)
            else:
                await asyncio.wait([task], timeout=None if deadline is None else max(0.0, deadline - loop.time()))
                if not task.done():
                    task.cancel()
        except asyncio.CancelledError as err:  # noqa: PERF203 - a loop of waits, each of which may be cut short
            if task.done() and task.cancelled():  # the work itself was cancelled, not only its caller
                raise
            if cancelled is None:
                cancelled = err.args
                if statement_on is not None:
                    deadline = loop.time() + CANCEL_TIMEOUT
                    if not task.done() and statement_on.pgconn.transaction_status == _ACTIVE:
                        stop = asyncio.ensure_future(_cancel(statement_on))
        except BaseException:  # noqa: BLE001, S110 - the work's own error: task.result() raises it below
            pass
    try:
        # Delivered before the connection serves anything else, however often the caller is cancelled meanwhile.
        while stop is not None and not stop.done():
            if statement_on is not None and (statement_on.broken or statement_on.closed):
                stop.cancel()  # the connection is gone (a server that does not answer): the stop reaches nothing
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([stop])
        if cancelled is not None:
            if not task.cancelled():
                task.exception()  # retrieved: its error (a statement's QueryCanceled) gives way to the cancellation
            raise asyncio.CancelledError(*cancelled)
        return task.result()
    finally:
        del task, stop  # the task keeps its error, whose traceback holds this frame: no cycle through it


async def _cancel(conn: AsyncConnection[Any]) -> None:
    try:
        await conn.cancel_safe(timeout=CANCEL_TIMEOUT)
    except Exception:
        logger.warning("pgdecor: could not ask the server to stop a cancelled statement", exc_info=True)
