"""Calls of one async session started while another of its calls, or a batch (``.many()``), reads its results
through the wire: their statements sent at once after its own, in its pipeline, in the same round trip (`join`);
their results read in order by the call (or the batch) that opened the pipeline, and handed to each (`deliver`).
The batch path and this are one mechanism: statements sent at once in a pipeline, each with its Sync (a batch's
executions under one), read in order by `generators.executions`.

On one connection a session's calls run one after the other. A call that finds the session's lock held by a call
reading its result through the wire (`AsyncWire.execute`, `_wire.reads_async.AsyncBatchResults`) does not wait to
send: its statement goes at once, after
the statements in flight, with a Sync of its own, so that the server runs it as it would have run it next, in the
same transaction (an error aborts the transaction for the statements after it, as if they had been sent later).
The call that opened the pipeline reads every result in it before it leaves it and gives the connection back to
the session, and hands each call the results of its own statement (`Joined.future`), which that call makes into
values with a `Reader` of its own.

A call cancelled once its statement is sent raises `CancelledError` as soon as it is cancelled; its statement is
not stopped on the server, where it may be another call's statement that runs by then, and what it did stands, as
when a call is cancelled just as its result arrives. Nor does a call whose own read is cut short (cancelled, or
its connection lost) while statements of others follow its own stop anything: it reads on to the end of the
pipeline, hands the others their results (or, the connection lost, its error), then raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, pq
from psycopg.adapt import Transformer

from .generators import Reading, Waits, piped, rest
from .reader import Reader
from .wire_base import BaseWire

__all__ = ["Joined", "awaited", "deliver", "drained", "join"]

T = TypeVar("T")


class Joined(Reader):
    """A call's statement sent into another call's pipeline: its results, once read, come as `future`'s result, to
    be taken (`result`) and read here."""

    __slots__ = ("future",)

    def __init__(self, conn: AsyncConnection[Any], wire: BaseWire) -> None:
        super().__init__(Transformer(conn), wire.adapters, wire.manager, wire._pgq)
        self.name, self._key, self._prep = wire.name, wire._key, wire._prep
        self.future: asyncio.Future[list[pq.abc.PGresult]] = asyncio.get_running_loop().create_future()

    async def result(self, sql: str, binary: bool) -> None:
        """Wait for the statement's results, and take them (`pgresult`, its rows read with `fetchone`,
        `fetchmany`); or raise psycopg's error for it."""
        self._made(sql, await self.future, binary)


def join(
    wire: BaseWire, conn: AsyncConnection[Any], joined: list[Joined], sql: str, params: Sequence[Any], *, binary: bool
) -> Joined | None:
    """Send *sql* with *params* on *wire*'s connection, in the pipeline whose results are being read, with a Sync
    of its own, and add it to *joined*; None, with nothing sent, where psycopg has not prepared it (see
    `BaseWire._send`). What *wire* keeps of the statement of the call reading is left as it was."""
    reading = wire.name, wire._key, wire._prep
    try:
        if not wire._send(sql, params, binary, piped=True, joining=True):
            return None
        call = Joined(conn, wire)
    finally:
        wire.name, wire._key, wire._prep = reading
    joined.append(call)
    return call


def awaited(joined: list[Joined]) -> bool:
    """Whether a call whose statement went in the pipeline (*joined*) still awaits its results: a call cut short
    before them stops nothing on the server then (where none does, it stops its statement as any call)."""
    return any(not call.future.done() for call in joined)


async def deliver(pgconn: pq.abc.PGconn, joined: list[Joined], waits: Waits, failed: Exception | None = None) -> None:
    """Read the results of the statements *joined* sent, in order, each up to its Sync, and hand each to its call
    (none to a call that was cancelled meanwhile). Once a read fails (the connection lost), or given the error
    *failed* of the read before them, the calls still waiting get an error of their own with its message."""
    try:
        for call in joined:
            results: list[pq.abc.PGresult] = []
            if failed is None:
                try:
                    results = (await _awaited(piped(pgconn, waits, 1)))[0]
                except Exception as err:  # noqa: BLE001 - handed to the calls whose results it cut off
                    failed = err
            if call.future.done():
                continue
            if failed is None:
                call.future.set_result(results)
            else:
                call.future.set_exception(psycopg.OperationalError(str(failed)))
    finally:
        joined.clear()


async def drained(pgconn: pq.abc.PGconn, joined: list[Joined], waits: Waits) -> None:
    """After the read of the call that opened the pipeline was cut short: read what is left of its own results (up
    to its Sync), then those of the statements *joined* sent after it (`deliver`)."""
    failed: Exception | None = None
    try:
        await _awaited(rest(pgconn, waits))
    except Exception as err:  # noqa: BLE001 - handed to the calls whose results it cut off
        failed = err
    await deliver(pgconn, joined, waits, failed)


def _awaited(gen: Reading[T]) -> Awaitable[T]:
    """*gen*, a generator-based coroutine of the wire's (see `_wire.generators`), as the event loop's task runs it."""
    return gen  # type: ignore[return-value]
