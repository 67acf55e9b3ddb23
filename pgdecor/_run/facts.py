"""What a stub's calls learn as they run, per server: the result format to ask for, the layouts of its prepared
statements' results, the last call that went through a wire (the key of the per-call fast path), and how spans
describe its statements.

A plan is frozen; its facts are not, and both runners share these decisions. No I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pgdecor._plan.procedure import ProcedureCall
from pgdecor._plan.query import QueryCall
from pgdecor._plan.statement import Statement
from pgdecor._rows.layouts import Layout, LayoutKey
from pgdecor._rows.registry import ServerKey
from pgdecor._wire.wire import CHUNK, CHUNKED_ROWS

from . import outcome, trace

if TYPE_CHECKING:
    from pgdecor._plan.plan import Plan

__all__ = ["Facts"]

#: Prepared statements whose layouts are remembered; more (a pool's connections replaced over time) start over.
_BY_PREPARED_MAX = 256


class Facts:
    """What one plan's calls have learnt (see the module docstring)."""

    __slots__ = ("_formats", "_operations", "large", "last", "made", "plan")

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        #: (server, SQL) of the statements a call has run → whether their results are fetched in binary: those
        #: whose first result had only columns psycopg loads the same from binary, which is faster to parse than
        #: text. Later calls run them through the lease's `Wire`.
        self._formats: dict[tuple[ServerKey, str], bool] = {}
        #: (prepare manager, statement name) → what that prepared statement's results become (their layout): a
        #: wire's call of a statement found here makes its value at once (`Wire.execute`).
        self.made: dict[tuple[object, bytes], outcome.Made] = {}
        #: The server, statement and result format of the last call of a fixed statement that went through a wire
        #: on a session's primary connection: later calls there send it again without looking anything up. Reset
        #: when the format to ask for changes.
        self.last: tuple[ServerKey, Statement, bool] | None = None
        #: Whether the last whole result read on the fast path had `CHUNK` rows or more: the next is read in chunks
        #: as it comes, where libpq can (`Wire.execute_chunked`).
        self.large = False
        #: How spans describe each of the plan's statements (by SQL; "" while none is known).
        self._operations: dict[str, trace.Operation] = {}

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

    def read_whole(self, rows: int) -> None:
        """A whole result of *rows* rows was read on the fast path."""
        self.large = rows >= CHUNK and CHUNKED_ROWS

    def format(self, key: ServerKey, statement: Statement) -> bool | None:
        """Whether *statement*'s results are fetched in binary on *key*; None if it has never run there."""
        return self._formats.get((key, statement.sql))

    def ran_through_cursor(self, key: ServerKey, statement: Statement) -> None:
        self._formats.setdefault((key, statement.sql), False)

    def ran_through_wire(self, key: ServerKey, statement: Statement, binary: bool, *, primary: bool) -> None:
        if self.plan.fixed and primary:
            self.last = (key, statement, binary)

    def layout(
        self, key: ServerKey, statement: Statement, res: Any, binary: bool, wire: Any
    ) -> tuple[LayoutKey | None, Layout | None]:
        """The layout key of *res* (None when not computed) and its layout, if one is known (None: build it). A
        result of a prepared statement read by *wire* finds its layout by the statement: the server refuses to
        change the columns of a prepared statement, so only its first result is looked up by column names and
        types."""
        prepared = (wire.manager, wire.name) if wire is not None and wire.name is not None else None
        if prepared is not None:
            made = self.made.get(prepared)
            if made is not None and made.binary is binary:
                return None, made.layout
        mapper = self.plan.mapper(statement)
        layout_key = mapper.key(res, key)
        found = mapper.cached(layout_key)
        if found is None or found.binary is not binary:
            return layout_key, None
        if prepared is not None:
            if len(self.made) >= _BY_PREPARED_MAX:  # connections come and go: forget the old ones'
                self.made.clear()
            self.made[prepared] = outcome.Made(self.plan, statement, found, self.read_whole)
        return layout_key, found

    def checked(self, key: ServerKey, statement: Statement, layout: Layout, binary: bool) -> Layout:
        """*layout*, once checked against the format its result came in; a first text result whose columns load the
        same from binary has the next calls ask for binary."""
        if binary == layout.binary:
            return layout
        self._formats[key, statement.sql] = not binary
        self.last = None
        if binary:
            raise outcome.format_changed(self.plan)
        return layout
