"""A call of an async session started while another of its calls holds the session's lock: where that other reads
its result through the wire, this one's statement is sent at once after it, in the same round trip, that call
reading its result (`_wire.flight`), and made into values here (`joined`). Where none does yet (the holder is
borrowing the connection, or looking up its function), the call waits to be woken, and looks again
(`_session.turns`). Where it cannot go so, it takes its turn on the session's lock as any call (`_run.call_async`).

Concurrency inside a session is asyncio's alone: this module has no sync twin.
"""

from __future__ import annotations

from typing import Any

import psycopg

from pgdecor._limits import deadlines
from pgdecor._limits.deadlines import limit_for
from pgdecor._plan.plan import Plan
from pgdecor._rows.json_load import too_deep
from pgdecor._session.lease_async import AsyncLease
from pgdecor._session.scope_async import alease_for, lease_in_use
from pgdecor._session.state import AsyncState
from pgdecor._wire.wire_async import AsyncWire, switch

from . import lookup_async as lookup
from . import outcome
from .outcome import ALL, ONE, rows
from .routes import Routes

__all__ = ["LATER", "joined"]

#: What `joined` gives where the call cannot go after another's statement: it takes its turn on the lock then.
LATER = object()


async def joined(plan: Plan, routes: Routes, sess: AsyncState, args: tuple[Any, ...]) -> Any:
    """The value of a call of *plan* with *args*, started while another call of *sess* holds its lock, its
    statement sent after that call's (see the module docstring); `LATER`, with nothing sent, where it cannot go
    so: the lock is free, or the call needs more than its statement (a time limit, its function looked up, a large
    result read in chunks, psycopg to prepare it). A call that ends transactions itself, declares errors or opens
    a stream is not sent here."""
    lock = sess.lock
    if not switch.on:  # no call reads through a wire
        return LATER
    ticket = lock.ticket()
    while lock.locked():
        if lock.queued(ticket) or (deadlines.armed.on and limit_for(plan.stub, plan.sql_object, plan.timeout, sess)):
            return LATER  # behind the calls started before it queued for their turn, as one after the other
        lease = lease_in_use(sess, readonly=plan.readonly)
        wire = None if lease is None else lease.wire_made()
        if lease is not None and wire is not None and wire.reading:
            return await _sent_after(plan, routes, sess, args, lease=lease, wire=wire)
        await lock.waiter()
    return LATER


async def _sent_after(
    plan: Plan, routes: Routes, sess: AsyncState, args: tuple[Any, ...], *, lease: AsyncLease, wire: AsyncWire
) -> Any:
    """The call's statement sent after those whose results a call reads through *wire* now, and its value once
    that call has read its result; `LATER`, with nothing sent, where it cannot go so."""
    route = routes.get(lease.key) if routes.fixed else routes.find(lease.key, args)
    if route is None or not route.wired or route.large:
        return LATER
    binary = route.binary
    try:
        call = wire.join(route.sql, args if route.params is None else route.params(args), binary)
        if call is None:
            return LATER
        await call.result(route.sql, binary)
        kind = route.kind
        if kind is None:
            return None
        res = call.pgresult
        how = kind(res)
        prepared = (call.manager, call.name)
        layout = route.layouts.get(prepared)
        if layout is None:  # the first result of this prepared statement: its types may be described
            async with sess.lock:  # the lease the call went through, while still the session's
                if lease_in_use(sess, readonly=plan.readonly) is not lease:
                    await alease_for(sess, readonly=plan.readonly)  # raises where the session has ended
                layout = await lookup.layout(lease, route, call, binary, prepared)
        if how is ALL and res is not None:
            route.read_whole(res.ntuples)
        if how is ONE:
            row: Any = call.fetchone()
            return layout.one(row)
        return rows(call, layout, how)
    except psycopg.Error as err:
        raise outcome.db_error(plan, err, route.statement)  # noqa: B904 - it sets the cause
    except RecursionError:
        raise too_deep(plan.stub) from None
