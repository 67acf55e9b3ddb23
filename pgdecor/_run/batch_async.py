"""A stub's batch in an async session (`AsyncBatches`, what ``stub.many(...)`` runs): the call once per argument
tuple, pipelined, in one round trip for the whole batch.

Its calls go the path of a single call (`_run.call_async`) a run of calls at a time, one per statement their
arguments make: the stub's `Route` on the server, then, once the statement has run there, the lease's `Wire`,
which pipelines the executions of psycopg's prepared statement and hands each result over as it comes, so that
it becomes a value while the server works on the next ones (`Wire.execute_many`); else, and where psycopg has not
prepared the statement for every call's parameter types, psycopg's ``executemany``.

This is the async source; `_run.batch` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import pq

from pgdecor._limits import deadlines
from pgdecor._limits.deadlines import limit_for
from pgdecor._plan.plan import Plan
from pgdecor._plan.results import Shape
from pgdecor._rows.json_load import too_deep
from pgdecor._session.current import current_session
from pgdecor._session.lease_async import AsyncLease
from pgdecor._session.scope_async import alease_for
from pgdecor._session.state import AsyncState
from pgdecor._wire.shield import finish
from pgdecor._wire.wire import Batch, Each
from pgdecor._wire.wire_async import AsyncWire

from . import lookup_async as lookup
from . import outcome
from .call_async import cursor_rows, outside_transaction
from .outcome import ONE, rows
from .routes import Route, Routes

__all__ = ["AsyncBatches"]

#: What `AsyncBatches._reader` gives for a result it cannot read yet.
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
                await lease.settle()
                await lookup.resolve(lease, plan)
            for statement, params in plan.batches(key, argsets):
                route = routes.of(key, statement)
                binary = route.binary and lease.binary
                wire = lease.wire() if route.wired and len(params) > 1 else None
                if wire is not None:  # the statement's executions pipelined by the wire, if psycopg prepared it
                    each = None if route.kind is None else self._reader(lease, wire, route, binary)
                    read = await wire.execute_many(route.sql, params, binary, each)
                    if read is not None:
                        out += [] if each is None else await self._wire_rows(lease, wire, route, binary, read)
                        continue
                await lease.settle()
                cur = lease.cursor(binary)
                route.wired = True
                kind = route.kind
                if kind is None:
                    await finish(cur.executemany(route.sql, params), statement_on=lease.conn)
                    continue
                await finish(cur.executemany(route.sql, params, returning=True), statement_on=lease.conn)
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

    def _reader(self, lease: AsyncLease, wire: AsyncWire, route: Route, binary: bool) -> Each:
        """What reads a batch's results into values as the wire receives them, overlapping with the server's work on
        the next ones: each by the layout of its own prepared statement, or `_LATER` while that is not known."""
        key, layouts, kind = lease.key, route.layouts, route.kind
        fetchone: Callable[[], Any] = wire.fetchone
        assert kind is not None  # the stub returns values

        def each(index: int, res: pq.abc.PGresult) -> Any:
            wire.use(index, res)
            prepared = (wire.manager, wire.name)
            layout = layouts.get(prepared) or route.layout(res, key, binary, prepared)[1]
            if layout is None:
                return _LATER
            how = kind(res)
            return layout.one(fetchone()) if how is ONE else rows(wire, layout, how)

        return each

    async def _wire_rows(
        self, lease: AsyncLease, wire: AsyncWire, route: Route, binary: bool, read: Batch
    ) -> list[Any]:
        """What a batch the wire ran returns: the values read as they came (*read*: the results, and those values),
        and those whose layout had to be made (its first result: types to describe, perhaps) read now."""
        results, made = read
        kind = route.kind
        assert kind is not None  # the stub returns values
        for index, value in enumerate(made):
            if value is _LATER:
                res = results[index]
                wire.use(index, res)
                layout = await lookup.layout(lease, route, wire, binary, (wire.manager, wire.name))
                made[index] = rows(wire, layout, kind(res))
        return made
