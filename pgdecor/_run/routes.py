"""What a stub's calls decide once per server: its `Route` there (the statement, the result format to ask for,
the layouts of its results, how many rows a result may have), and how spans name its statements.

A plan is frozen; its routes are not: a route is made at the stub's first call on a server (`_run.lookup_async`
reads what it needs from the catalog) and filled by the calls after it. A call finds its route in one lookup
(`Routes.get`, by the server, for a stub whose statement is the same whatever its arguments), and a result of a
prepared statement its layout in one more (`Route.layouts`). Both runners share these; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from psycopg import pq

from pgdecor._plan.procedure import ProcedureCall
from pgdecor._plan.query import QueryCall
from pgdecor._plan.statement import Statement
from pgdecor._rows.layouts import Layout, LayoutKey
from pgdecor._rows.mapping import RowMapper
from pgdecor._rows.registry import ServerKey
from pgdecor._wire.wire import CHUNK, CHUNKED_ROWS

from . import outcome, trace

if TYPE_CHECKING:
    from pgdecor._plan.plan import Plan

__all__ = ["Prepared", "Route", "Routes"]

#: A prepared statement of a connection: psycopg's prepare manager of the connection, and the statement's name (None:
#: sent unnamed, never kept).
Prepared = tuple[object, bytes | None]

#: Prepared statements whose layouts a route remembers; more (a pool's connections replaced over time) start over.
_LAYOUTS_MAX = 256


class Route:
    """One statement of a stub on one server, and what its calls there have decided about it, each once: the
    result format, the layout of each prepared statement's results, and what a result's rows make (`kind`)."""

    __slots__ = ("binary", "kind", "large", "layouts", "mapper", "params", "plan", "sql", "statement", "wired")

    def __init__(self, plan: Plan, statement: Statement) -> None:
        self.plan, self.statement, self.sql = plan, statement, statement.sql
        #: The arguments → the parameters; None when the parameters are the arguments as they are.
        self.params: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = (
            None if statement.direct else statement.params
        )
        self.mapper: RowMapper = plan.mapper(statement)
        #: A result → how its rows are fetched (`outcome.ONE`, `ALL`, `NONE`, `COUNT`), raising for a row count the
        #: stub does not allow; None for a stub that returns nothing (its results are not read).
        self.kind = outcome.kind_for(plan, statement)
        #: Whether results are asked for in binary: once a first (text) result had only columns psycopg loads the
        #: same from binary, which is faster to parse than text. Always the format of the `layouts`.
        self.binary = False
        #: Whether calls go through the lease's `Wire`: once the statement has run on the server through a cursor,
        #: so that psycopg prepares it (at the second call on a connection, by its own rule).
        self.wired = False
        #: The layout of the results of each prepared statement that ran it: the server refuses to change a prepared
        #: statement's columns, so only its first result is looked up by column names and types.
        self.layouts: dict[Prepared, Layout] = {}
        #: Whether the last whole result read had `CHUNK` rows or more: the next is read in chunks as it comes,
        #: where libpq can (`_wire.reads_async.AsyncChunks`).
        self.large = False

    def layout(
        self, res: pq.abc.PGresult, server: ServerKey, binary: bool, prepared: Prepared | None
    ) -> tuple[LayoutKey, Layout | None]:
        """The layout of *res*, a result in *binary* (or text), by its column names and types (`learnt` from it, if
        known), and its key: to build it by (`_run.lookup_async.layout`) when it is not known."""
        key = self.mapper.key(res, server)
        found = self.mapper.cached(key)
        return key, None if found is None else self.learnt(found, binary, prepared)

    def learnt(self, layout: Layout, binary: bool, prepared: Prepared | None) -> Layout:
        """*layout*, the layout of a result that came in *binary* (or text), once checked against that format and
        kept for its prepared statement. A text result whose columns load the same from binary has the next calls
        ask for binary; a binary one whose columns now load only as text, text (and raises: it cannot be read)."""
        if binary and not layout.binary:
            self._ask(binary=False)
            raise outcome.format_changed(self.plan)
        if layout.binary and not self.binary:
            self._ask(binary=True)
        if prepared is not None and prepared[1] is not None and (layout.binary or not self.binary):
            if len(self.layouts) >= _LAYOUTS_MAX:  # connections come and go: forget the old ones'
                self.layouts.clear()
            self.layouts[prepared] = layout
        return layout

    def _ask(self, *, binary: bool) -> None:
        self.binary = binary
        self.layouts.clear()  # they were checked against the other format

    def read_whole(self, rows: int) -> None:
        """A whole result of *rows* rows was read."""
        self.large = rows >= CHUNK and CHUNKED_ROWS


class Routes:
    """One plan's routes (see the module docstring), and how its spans name each of its statements."""

    __slots__ = ("_operations", "_routes", "fixed", "get", "plan")

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        #: Whether a call's statement is the same whatever its arguments: its route is then found by the server.
        self.fixed = plan.fixed
        #: The server (and, unless `fixed`, the statement's SQL) → the route.
        self._routes: dict[Any, Route] = {}
        #: The route on the server *key* of a `fixed` plan; None before its first call there (the dict's own lookup,
        #: with no call of a function of ours around it: it is made on every call).
        self.get: Callable[[ServerKey], Route | None] = self._routes.get
        #: How spans describe each of the plan's statements (by SQL; "" while none is known).
        self._operations: dict[str, trace.Operation] = {}

    def find(self, key: ServerKey, args: tuple[Any, ...]) -> Route | None:
        """The route on the server *key* of the statement *args* make; None before its first call there."""
        if self.fixed:
            return self._routes.get(key)
        statement = self.plan.call.cached(key, args)
        return None if statement is None else self._routes.get((key, statement.sql))

    def of(self, key: ServerKey, statement: Statement) -> Route:
        """The route of *statement* on the server *key*, made at its first call there."""
        found = self._routes.get(key if self.fixed else (key, statement.sql))
        if found is None or found.statement is not statement:
            found = self._routes[key if self.fixed else (key, statement.sql)] = Route(self.plan, statement)
        return found

    def operation(self, args: tuple[Any, ...], key: ServerKey | None) -> trace.Operation:
        """How spans describe the statement *args* make on the server *key* (without it, for a function, the
        statement seen last)."""
        call = self.plan.call
        if isinstance(call, QueryCall):
            statement: Statement | None = call.statement
        else:
            statement = call.cached(key, args) if key is not None else None
        sql = statement.sql if statement is not None else ""
        found = self._operations.get(sql)
        if found is None:
            if statement is None and self._operations:
                return next(reversed(self._operations.values()))
            procedure = ".".join(call.name) if isinstance(call, ProcedureCall) else None
            found = self._operations[sql] = trace.Operation(self.plan.stub, statement, procedure)
        return found
