# Generated from pgdecor/_run/lookup_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._run.lookup_async`, generated from it: see there."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor, ServerCursor

from pgdecor._plan.plan import Plan
from pgdecor._plan.procedure import ProcedureCall
from pgdecor._rows.layouts import Layout
from pgdecor._rows.registry import registry_for
from pgdecor._session.lease import Lease
from pgdecor._sources import probe
from pgdecor._wire.reader import Reader

from .routes import Prepared, Route, Routes

__all__ = ["layout", "resolve", "route"]


def route(lease: Lease, routes: Routes, args: tuple[Any, ...]) -> Route:
    """The route of the statement *args* make on the lease's server, its function resolved there first."""
    plan, key = routes.plan, lease.key
    statement = plan.call.cached(key, args)
    if statement is None:
        resolve(lease, plan)
        statement = plan.statement(key, args)
    return routes.of(key, statement)


def resolve(lease: Lease, plan: Plan) -> None:
    """Pick the function *plan* calls on the lease's server, from its catalog (the check the connection is owed
    made first)."""
    call = plan.call
    assert isinstance(call, ProcedureCall)  # a query's statement is always cached
    lease.settle()
    probe.resolve(lease.conn, lease.key, call)


def layout(
    lease: Lease,
    route: Route,
    src: Cursor[Any] | ServerCursor[Any] | Reader,
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
        probe.describe(lease.conn, registry, mapper.missing_types(res, registry))
    return route.learnt(mapper.build(key, registry, src.adapters), binary, prepared)
