"""Awaiting work that must run to its end although the awaiting task is cancelled.

Ending a transaction, or reading what remains of a statement the server was asked to stop, must not be cut
short: a connection left half-way is unusable, and psycopg closes it. `asyncio.shield` alone is not enough under
anyio (Starlette, FastAPI), whose cancel scopes cancel the task again at every await until it leaves the scope;
`finish` keeps waiting through every such cancellation, then re-raises one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def finish(coro: Coroutine[Any, Any, T]) -> T:
    """Run *coro* to its end in a task of its own, even if the caller is cancelled (repeatedly) meanwhile; then
    return its result, or raise its error; a cancellation that arrived meanwhile is raised after it ends."""
    task = asyncio.ensure_future(coro)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:  # noqa: PERF203 - a loop of waits, each of which may be cut short
            if task.done() and task.cancelled():  # the work itself was cancelled, not only its caller
                raise
            cancelled = True
        except BaseException:  # noqa: BLE001, S110 - the work's own error: task.result() raises it below
            pass
    if cancelled:
        task.exception()  # retrieved: its error, if any, gives way to the cancellation
        raise asyncio.CancelledError
    return task.result()
