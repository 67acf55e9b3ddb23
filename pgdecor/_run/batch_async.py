"""A stub's batch in an async session (`AsyncBatches`, what ``stub.many(...)`` runs): the call once per argument
tuple, pipelined, in one round trip for the whole batch.

Its calls go the path of a single call (`_run.call_async`) a run of calls at a time, one per statement their
arguments make: the stub's `Route` on the server, then, once the statement has run there, the lease's `Wire`,
which pipelines the executions of psycopg's prepared statement and gives their results as they come, each made
into a value here while the server works on the next ones (`_wire.reads_async.AsyncBatchResults`); else, and where
psycopg has not prepared the statement for every call's parameter types, psycopg's ``executemany``.

This is the async source; `_run.batch` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from pgdecor._limits import deadlines
from pgdecor._limits.deadlines import limit_for
from pgdecor._plan.plan import Plan
from pgdecor._plan.results import Shape
from pgdecor._rows.json_load import too_deep
from pgdecor._rows.layouts import Layout
from pgdecor._session.begin_async import beginning
from pgdecor._session.current import current_session
from pgdecor._session.lease_async import AsyncLease
from pgdecor._session.scope_async import alease_for
from pgdecor._session.state import AsyncState
from pgdecor._wire.reads_async import AsyncBatchResults
from pgdecor._wire.shield import finish
from pgdecor._wire.wire_async import AsyncWire

from . import lookup_async as lookup
from . import outcome
from .call_async import cursor_rows, outside_transaction
from .outcome import ONE, rows
from .routes import Route, Routes

__all__ = ["AsyncBatches"]

#: What `AsyncBatches._wired` makes of a result it cannot read yet.
_LATER = object()


class AsyncBatches:
    """Runs one plan's batches (see the module docstring)."""

    __slots__ = ("plan", "routes")

    def __init__(self, plan: Plan, routes: Routes) -> None:
        self.plan, self.routes = plan, routes

    async def run(self, argsets: list[tuple[Any, ...]]) -> Any:
        """Run the call once per argument tuple of *argsets*: the list of their values (None for a stub that
        returns nothing)."""
        plan = self.plan
        plan.check_many(argsets)
        sess = current_session(plan.stub, ".many()", is_async=True)
        async with sess.lock:
            if plan.autocommit:
                outside_transaction(plan, sess, ".many()")
            if deadlines.armed.on and (limit := limit_for(plan.stub, plan.sql_object, plan.timeout, sess)):
                limit.left()  # a batch is not sent once its limit has passed (and is not bounded otherwise)
            try:
                return await self._batch(sess, argsets)
            except RecursionError:
                raise too_deep(plan.stub) from None

    async def _batch(self, sess: AsyncState, argsets: list[tuple[Any, ...]]) -> Any:
        plan, routes = self.plan, self.routes
        # The connection's check left to the batch (see `_run.call_async`): paid by the wire, or made first.
        lease: AsyncLease = sess.lease or await alease_for(sess, readonly=plan.readonly, owing=True)
        key = lease.key
        out: list[Any] = []
        route: Route | None = None
        try:
            if argsets and plan.call.cached(key, argsets[0]) is None:
                await lookup.resolve(lease, plan)
            runs = plan.batches(key, argsets)
            for run, (statement, params) in enumerate(runs, 1):
                route = routes.of(key, statement)
                binary = route.binary and lease.binary
                wire = lease.wire() if route.wired and len(params) > 1 else None
                if wire is not None:  # the statement's executions pipelined by the wire, if psycopg prepared it
                    if lease.owing and not lease.pending:  # no BEGIN goes with the batch to pay the check
                        await lease.settle()
                    # Calls started meanwhile go after the batch's last run, not between two of its runs.
                    joinable = run == len(runs) and not lease.savepoints
                    values = await self._wired(lease, wire, route, binary, params, joinable=joinable)
                    if values is not None:
                        out += values
                        continue
                cur = lease.cursor(binary)  # the connection's check paid by the BEGIN sent with it, or made first
                route.wired = True
                kind = route.kind
                if kind is None:
                    await finish(
                        beginning(lease, cur.executemany, route.sql, params, batch=True), statement_on=lease.conn
                    )
                    continue
                await finish(
                    beginning(lease, cur.executemany, route.sql, params, batch=True, returning=True),
                    statement_on=lease.conn,
                )
                # Each result by its own layout: values of different types make prepared statements of their own.
                while True:
                    how = kind(cur.pgresult)
                    layout = await lookup.layout(lease, route, cur, binary)
                    out.append(await cursor_rows(cur, layout, how))
                    if not cur.nextset():
                        break
        except psycopg.Error as err:
            raise outcome.db_error(plan, err, None if route is None else route.statement)  # noqa: B904 - it sets the cause
        return None if plan.result.shape is Shape.NONE else out

    async def _wired(
        self, lease: AsyncLease, wire: AsyncWire, route: Route, binary: bool, params: Sequence[Any], *, joinable: bool
    ) -> list[Any] | None:
        """The values of a run of calls that *wire* pipelined (None if it sent nothing): each read as its result
        comes, overlapping with the server's work on the next ones, by the layout of its own prepared statement;
        those whose layout is not known yet (its first result: types to describe, perhaps) once the batch is read.
        What cannot be made into a value raises once the whole batch is read, so that the connection goes on
        serving the session."""
        key, layouts, kind = lease.key, route.layouts, route.kind
        only_row = wire.only_row
        use = wire.use
        made: list[Any] = []
        add = made.append
        failed: Exception | None = None
        later = False  # values made once the batch is read (`_LATER`)
        async with AsyncBatchResults(wire, route.sql, params, binary, joinable=joinable) as read:
            if read is None:
                return None
            names, manager = wire.names, wire.manager
            # The layout of the results of the prepared statement *name*, looked up again for another one's.
            name: bytes | None = None
            layout: Layout | None = None
            async for ready in read:
                if kind is None or failed is not None:
                    continue
                try:
                    for index, res in ready:
                        if fresh := names[index] is not name:
                            name = names[index]
                            prepared = (manager, name)
                            layout = layouts.get(prepared) or route.layout(res, key, binary, prepared)[1]
                        if layout is None:
                            add(_LATER)
                            later = True
                        elif (how := kind(res)) is ONE:  # the usual single row, read without taking the result
                            add(layout.one(only_row(res, fresh)))
                        else:
                            use(index, res)
                            add(rows(wire, layout, how))
                except Exception as err:  # noqa: BLE001 - raised once the batch is read
                    failed = err
        if failed is not None:
            raise failed
        if kind is None:
            return []
        if not later:
            return made
        results = read.results
        for index, value in enumerate(made):
            if value is _LATER:
                res = results[index]
                use(index, res)
                layout = await lookup.layout(lease, route, wire, binary, (wire.manager, wire.name))
                made[index] = rows(wire, layout, kind(res))
        return made
