"""What a call's result means for its stub: how to fetch it (one row, every row, nothing: chosen once per statement,
`kind_for`), the errors for a row count or a result the stub does not allow, and what a database error becomes. No
I/O: both runners call these.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import psycopg
from psycopg import pq

from pgdecor._annotations import describe
from pgdecor._errors import Error, MappingError, NotFoundError, TooManyRowsError, UndefinedFunctionError, add_note
from pgdecor._plan.procedure import ProcedureCall
from pgdecor._plan.results import Shape
from pgdecor._plan.statement import Statement
from pgdecor._rows.layouts import Layout
from pgdecor._wire import wire

if TYPE_CHECKING:
    from pgdecor._plan.plan import Plan

__all__ = [
    "ALL",
    "COUNT",
    "NONE",
    "ONE",
    "Source",
    "affected",
    "db_error",
    "format_changed",
    "kind_for",
    "log",
    "rows",
]

_TUPLES_OK = pq.ExecStatus.TUPLES_OK

#: How to fetch a result (see `kind_for`): nothing (an optional row that is not there), one row, every row, or the
#: number of rows a command affected (a stub annotated `-> int` on a command).
NONE, ONE, ALL, COUNT = 0, 1, 2, 3

#: DEBUG records: each call's stub, SQL object and duration.
logger = logging.getLogger("pgdecor")


def kind_for(plan: Plan, statement: Statement) -> Callable[[pq.abc.PGresult | None], int] | None:
    """How the results of *statement* are fetched for *plan*, chosen once per statement: a function of a result
    that says how (`ONE`, `ALL`, `NONE`, `COUNT`) and raises for a row count the stub does not allow; None for a
    stub that returns nothing (its results are not read)."""
    shape = plan.result.shape
    if shape is Shape.NONE:
        return None
    counts, optional = plan.result.counts, shape is Shape.OPTIONAL
    fixed = ONE if statement.value else ALL if shape is Shape.MANY else None

    def kind(res: pq.abc.PGresult | None) -> int:
        if res is None:  # psycopg keeps results for later in pipeline mode
            _in_pipeline(plan)
        if res.status != _TUPLES_OK:
            if counts:
                return COUNT
            _no_result_set(plan)
        if fixed is not None:
            return fixed
        n = res.ntuples
        if n == 1:
            return ONE
        if n == 0 and optional:
            return NONE
        _row_count(plan, n)

    if fixed is not None:
        return kind

    def single(res: pq.abc.PGresult | None) -> int:
        if res is not None and res.ntuples == 1:  # the usual single row (a command's result has none)
            return ONE
        return kind(res)

    return single


def _in_pipeline(plan: Plan) -> NoReturn:
    msg = (
        f"{plan.stub}: called inside `conn.pipeline()`, where {plan.sql_object}'s rows would come only "
        f"at the pipeline's end; call it outside the pipeline block, or use {plan.stub}.many(...) to batch"
    )
    raise Error(msg)


def _row_count(plan: Plan, n: int) -> NoReturn:
    if n == 0:
        msg = (
            f"{plan.stub}: {plan.sql_object} returned no row but the stub returns exactly one; "
            f"annotate it `-> ... | None` to accept no row"
        )
        raise NotFoundError(msg)
    msg = (
        f"{plan.stub}: {plan.sql_object} returned {n} rows but the stub returns {plan.result.shape.value}; "
        f"annotate it `-> list[...]` to get them all, or make the SQL return one row"
    )
    raise TooManyRowsError(msg)


def affected(res: pq.abc.PGresult) -> int:
    """The number of rows the command of *res* affected (INSERT, UPDATE, DELETE, MERGE, COPY...)."""
    count = res.command_tuples
    if count is None:
        status = (res.command_status or b"").decode()
        msg = f"the command {status!r} gives no number of rows; annotate its stub `-> None`"
        raise MappingError(msg)
    return count


def _no_result_set(plan: Plan) -> NoReturn:
    msg = (
        f"{plan.stub}: {plan.sql_object} returned no rows at all (it is not a SELECT and has no RETURNING) "
        f"but the stub returns {plan.result.shape.value}; annotate it `-> None`, `-> int` for the number of rows it "
        f"affected, or add RETURNING"
    )
    raise MappingError(msg)


def format_changed(plan: Plan) -> MappingError:
    """The error for a result fetched in binary whose columns now load only as text."""
    msg = (
        f"{plan.stub}: the column types {plan.sql_object} returns changed since this process first called it "
        f"(a column's type now loads only as text); the call ran, but its rows cannot be read: call it again"
    )
    return MappingError(msg)


def db_error(plan: Plan, err: psycopg.Error, statement: Statement | None) -> BaseException:
    """The exception to raise for a database error: a mapped one, a clearer pgdecor one, or *err* + a note."""
    ran = f"which ran: {statement.sql}" if statement is not None else "while resolving it"
    mapped = plan.errors.get(err.sqlstate or "")
    if mapped is not None:
        # The server's words only, as the function raised them: a handler may show them to its client (the stub's
        # name is in the note).
        diag = err.diag
        text = diag.message_primary or str(err)
        if diag.message_detail:
            text += f"\nDETAIL:  {diag.message_detail}"
        if diag.message_hint:
            text += f"\nHINT:  {diag.message_hint}"
        new = mapped(text)
        new.__cause__ = err
        add_note(new, f"pgdecor: SQLSTATE {err.sqlstate} from {plan.stub}, {ran}")
        return new
    call = plan.call
    dropped = isinstance(err, psycopg.errors.UndefinedFunction) and err.diag.context is None
    if dropped and isinstance(call, ProcedureCall):
        params = ", ".join(f"{p.name} => {describe(p.annotation)}" for p in call.params)
        msg = (
            f"{plan.stub}: the database has no function {'.'.join(call.name)}({params}) any more; "
            f"it was dropped or changed after this process first called it (server said: "
            f"{err.diag.message_primary}); restart the process after changing function signatures"
        )
        new = UndefinedFunctionError(msg)
        new.__cause__ = err
        return new
    note = f"pgdecor: raised by {plan.stub}, {ran}"
    if note in getattr(err, "__notes__", ()):  # noted already, by the call that a later path raised it through
        return err
    add_note(err, note)
    if isinstance(err, psycopg.errors.InvalidTransactionTermination):
        declared = plan.autocommit or not isinstance(call, ProcedureCall)
        declare = "" if declared else "declare the stub `@procedure(..., autocommit=True)` and "
        note = (
            f"pgdecor: {plan.stub} ran a procedure that ends transactions itself (COMMIT or ROLLBACK in its body), "
            f"which PostgreSQL allows only outside a transaction block: {declare}call it in "
            f"`session(..., autocommit=True)`, outside `transaction()`"
        )
        add_note(err, note)
    return err


def log(plan: Plan, start: float) -> None:
    logger.debug("%s: %s in %.3f ms", plan.stub, plan.sql_object, (perf_counter() - start) * 1e3)


#: Rows turned into values at a time when fetching a whole result: small batches keep the fetched tuples short
#: lived, which spares the garbage collector from scanning them again and again (measured: ~1.3x faster).
CHUNK = wire.CHUNK


class Source(Protocol):
    """What a result is read from, a row at a time or in chunks: a sync client-side cursor, or a wire."""

    @property
    def pgresult(self) -> pq.abc.PGresult | None: ...

    def fetchone(self) -> Any: ...

    def fetchmany(self, size: int) -> list[Any]: ...


def rows(cur: Source, layout: Layout, kind: int) -> Any:
    """What a call returns from the rows of a sync client-side cursor (or a wire), fetched as *kind* says."""
    if kind is ONE:
        return layout.one(cur.fetchone())
    if kind is NONE:
        return None
    if kind is COUNT:
        res = cur.pgresult
        assert res is not None  # `kind_for` saw it
        return affected(res)
    out: list[Any] = []
    fetch, make = cur.fetchmany, layout.many
    chunk = fetch(CHUNK)
    with collector_paused(len(chunk) == CHUNK):
        while chunk:
            out += make(chunk)
            chunk = fetch(CHUNK)
    return out


@contextmanager
def collector_paused(large: bool) -> Iterator[None]:
    """While a large result becomes objects, pause the cyclic garbage collector: the objects made from rows
    cannot form cycles, and the collector would otherwise scan the growing list again and again (measured:
    a quarter of the time of 100,000 rows). Its previous state is restored; no collection is skipped or
    relied on."""
    if not large or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
