"""What a call looks up on its server where its route lacks it: the function the stub calls, resolved from the catalog
at its first call on a server (which makes its `Route` there), and the layout of a result whose columns are new,
their types described from the catalog first if they must be (`_sources.probe_async`).

This is the async source; `_run.lookup` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncCursor, AsyncServerCursor

from pgdecor._plan.plan import Plan
from pgdecor._plan.procedure import ProcedureCall
from pgdecor._rows.layouts import Layout
from pgdecor._rows.registry import registry_for
from pgdecor._session.lease_async import AsyncLease
from pgdecor._sources import probe_async as probe
from pgdecor._wire.reader import Reader

from .routes import Prepared, Route, Routes

__all__ = ["layout", "resolve", "route"]


async def route(lease: AsyncLease, routes: Routes, args: tuple[Any, ...]) -> Route:
    """The route of the statement *args* make on the lease's server, its function resolved there first."""
    plan, key = routes.plan, lease.key
    statement = plan.call.cached(key, args)
    if statement is None:
        await resolve(lease, plan)
        statement = plan.statement(key, args)
    return routes.of(key, statement)


async def resolve(lease: AsyncLease, plan: Plan) -> None:
    """Pick the function *plan* calls on the lease's server, from its catalog (the check the connection is owed
    made first)."""
    call = plan.call
    assert isinstance(call, ProcedureCall)  # a query's statement is always cached
    await lease.settle()
    await probe.resolve(lease.conn, lease.key, call)


async def layout(
    lease: AsyncLease,
    route: Route,
    src: AsyncCursor[Any] | AsyncServerCursor[Any] | Reader,
    binary: bool,
    prepared: Prepared | None = None,
) -> Layout:
    """The layout of *src*'s current result, which came in *binary* (or text), from the prepared statement
    *prepared* if known: found by its columns, else built, its types described first if they must be; learnt by
    *route*."""
    res = src.pgresult
    assert res is not None  # a statement has run
    key, found = route.layout(res, lease.key, binary, prepared)
    if found is not None:
        return found
    mapper = route.mapper
    registry = registry_for(lease.key) if mapper.uses_registry else None
    if registry is not None:
        await probe.describe(lease.conn, registry, mapper.missing_types(res, registry))
    return route.learnt(mapper.build(key, registry, src.adapters), binary, prepared)
