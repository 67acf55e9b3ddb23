"""A stub's plan: everything derived from the stub once, frozen (the call, the argument checks, the result shape
and its row mappers, the error map). What calls learn as they run is kept apart, in `_run.facts`; running them is
`_run.runner_async` (and its generated `_run.runner`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pgdecor._rows.mapping import RowMapper
from pgdecor._rows.registry import ServerKey

from .params import Param, compile_check
from .procedure import ProcedureCall
from .query import QueryCall
from .results import ResultPlan, Shape
from .statement import Statement

__all__ = ["ErrorMap", "Plan"]

ErrorMap = Mapping[str, Callable[[str], BaseException]]


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything derived from a stub, computed once: the call, argument checks and row mapping."""

    #: ``module.qualname`` of the stub.
    stub: str
    #: What the SQL calls, for messages: ``function app.get_user`` or ``the query``.
    sql_object: str
    call: QueryCall | ProcedureCall
    #: One per argument the generated caller packs, in that order.
    params: tuple[Param, ...]
    result: ResultPlan
    is_async: bool
    #: SQLSTATE → exception class raised instead of psycopg's.
    errors: ErrorMap = field(default_factory=dict)
    #: May run on the session's replica (see `pgdecor.session`).
    readonly: bool = False
    #: Calls a procedure that ends transactions itself: only outside a transaction block (`pgdecor.procedure`).
    autocommit: bool = False
    #: Seconds above which a call is logged and counted as slow, in place of its database's (see `_limits.slow`).
    slow: float | None = None
    #: Seconds a call is given before it is stopped (see `_limits.deadlines`); None: no limit of its own.
    timeout: float | None = None
    #: Rows → the return annotation's row type.
    row_mapper: RowMapper = field(init=False)
    #: Raises ArgumentError for an argument tuple that does not fit the annotations; None if all fit.
    check: Callable[[tuple[Any, ...]], None] | None = field(init=False)
    #: Whether a call's statement is the same whatever its arguments (none may be left to DEFAULT).
    fixed: bool = field(init=False)
    #: The SQL of the statement `statement` composed last (a function's, one per server): what `sql` shows.
    _composed: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        r = self.result
        rows = r.shape is not Shape.NONE  # a `-> None` stub maps nothing
        row_type = r.row_type if rows else Any
        derived = {
            "row_mapper": RowMapper(
                self.stub, self.sql_object, row_type, scalar=r.scalar or not rows, nullable=r.nullable
            ),
            "check": compile_check(self.stub, self.params),
            "fixed": not (isinstance(self.call, ProcedureCall) and self.call.defaults),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @property
    def sql(self) -> str | None:
        """The SQL of every call when the stub fixes it (a query's); where each server's is composed at the first
        call there (a function's), the one composed last, None before the first."""
        return self.call.statement.sql if isinstance(self.call, QueryCall) else self._composed

    @cached_property
    def value_mapper(self) -> RowMapper:
        """The mapping of a function's single value (json, an array, a composite) onto the return annotation."""
        r = self.result
        value_type = r.value_type if r.shape is not Shape.NONE else Any
        return RowMapper(self.stub, self.sql_object, value_type, scalar=True, nullable=r.value_nullable)

    def mapper(self, statement: Statement) -> RowMapper:
        return self.value_mapper if statement.value else self.row_mapper

    def check_many(self, argsets: list[tuple[Any, ...]]) -> None:
        if self.check is not None:
            deque(map(self.check, argsets), maxlen=0)  # each checked, in a loop of C's

    def statement(self, key: ServerKey, args: tuple[Any, ...]) -> Statement:
        """The statement for *args* on the server *key*, once the call has been resolved there."""
        found = self.call.cached(key, args)
        if found is None:
            assert isinstance(self.call, ProcedureCall)  # a query's statement is always cached
            found = self.call.statement(key, args)
            # Frozen for what is derived from the stub; this is what a call learnt, kept for the stub's `.sql`.
            object.__setattr__(self, "_composed", found.sql)
        return found

    def batches(self, key: ServerKey, argsets: list[tuple[Any, ...]]) -> list[tuple[Statement, list[Any]]]:
        """*argsets* (the call resolved on *key*) as runs of consecutive calls sharing one statement."""
        if not argsets:
            return []
        if self.fixed:  # one statement serves every call
            statement = self.statement(key, argsets[0])
            return [(statement, argsets if statement.direct else list(map(statement.params, argsets)))]
        out: list[tuple[Statement, list[Any]]] = []
        for args in argsets:
            statement = self.statement(key, args)
            if not out or out[-1][0] is not statement:
                out.append((statement, []))
            out[-1][1].append(statement.params(args))
        return out
