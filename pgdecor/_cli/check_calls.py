"""`pgdecor check` of a call stub (`@procedure`, `@query`) against the database: a `@procedure` is resolved as at
its first call (the function exists, one overload fits the parameter names and types); parameters left to
``DEFAULT`` have a default in the function; the statement the stub would send is prepared (never executed) and its
described parameters and result columns are compared with the annotations, the row type's fields (by name and
type), ``Optional`` fields where the catalog knows a column is nullable (columns of tables and composite types),
and the labels of enum types. Every problem of the stub is reported at once.
"""

from __future__ import annotations

import enum
import typing
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat

from pgdecor._annotations import bare, describe, is_structured
from pgdecor._errors import Error, MappingError
from pgdecor._plan.catalog import POLYMORPHIC_ARRAYS, Function, PgType, read_functions, read_types
from pgdecor._plan.matching import Match, compatible, match
from pgdecor._plan.plan import Plan
from pgdecor._plan.procedure import ProcedureCall
from pgdecor._plan.query import QueryCall
from pgdecor._plan.results import Shape
from pgdecor._plan.statement import Statement
from pgdecor._rows.registry import registry_for, server_key
from pgdecor._sources import probe

from .check_catalog import Catalog
from .discover import FoundStub, Problem

__all__ = ["CallCheck"]

_INT2, _TEXT, _TEXT_ARRAY = 21, 25, 1009


class CallCheck:
    """The check of one call stub, on the check's connection: `run` returns its problems."""

    def __init__(self, found: FoundStub, plan: Plan, catalog: Catalog) -> None:
        self.found, self.plan, self.catalog = found, plan, catalog
        self.conn = catalog.conn
        self.key = server_key(self.conn)
        self.problems: list[Problem] = []
        self.polymorphic: list[str] = []
        #: The function a @procedure stub calls, once resolved.
        self.function: Function | None = None

    def problem(self, database: str, stub_says: str, fix: str) -> None:
        self.problems.append(Problem(self.found.location, self.found.stub, database, stub_says, fix))

    def run(self) -> list[Problem]:
        call = self.plan.call
        if isinstance(call, ProcedureCall):
            statement = self.resolve(call)
            if statement is None:
                return self.problems
        else:
            statement = call.statement
        described = self.describe(statement)
        if described is None:
            return self.problems
        typed_error, res = described
        found = len(self.problems)
        self.check_params(statement, res)
        if typed_error is not None and len(self.problems) == found:
            self.problem(f"the server cannot prepare the statement: {typed_error}", statement.sql, "fix the SQL")
            return self.problems
        self.check_columns(statement, res)
        return self.problems

    # -- the function -----------------------------------------------------------------------------------------

    def resolve(self, call: ProcedureCall) -> Statement | None:
        rows = self.catalog.rows(*call.catalog_queries())
        type_rows = self.catalog.rows(*call.types_query(rows))
        try:
            call.resolve(self.key, rows, type_rows)
        except Error as err:
            fix = (err.fix or "create the function or fix the stub").replace(":\n  ", ": ").replace("\n  ", " | ")
            self.problem(err.found or str(err), self.signature(call), fix)
            return self.despite_types(call, rows, type_rows)
        chosen = call.match(self.key)
        self.function = chosen.function
        self.polymorphic = _polymorphic(chosen.function)
        for binding in chosen.bindings:
            if binding.param is None:
                continue
            index = binding.param + call.offset
            param = self.plan.params[index]
            has_default_marker = index in call.defaults
            if has_default_marker and not binding.arg.has_default:
                self.problem(
                    f"{chosen.function.signature} has no default for {binding.arg.name or f'argument {index + 1}'}",
                    f"{param.name} = DEFAULT",
                    "give the parameter a Python default or none, or add a DEFAULT to the function",
                )
            self.check_enum(param.annotation, binding.arg.type, f"parameter {param.name!r}")
        shape = self.plan.result.shape
        function = chosen.function
        one_row = function.is_procedure or function.returns_composite or bool(function.outputs)
        if shape in (Shape.MANY, Shape.STREAM) and not function.returns_set and one_row:
            self.problem(
                f"{function.signature} returns one row, not a set",
                describe(self.plan.result.value_type),
                "annotate it `-> T` or `-> T | None`",
            )
        return call.statement(self.key, tuple(None for _ in self.plan.params))

    def despite_types(
        self, call: ProcedureCall, rows: list[tuple[Any, ...]], type_rows: list[tuple[Any, ...]]
    ) -> Statement | None:
        """After a parameter problem: the statement for the one function of the name, bound by parameter names
        alone, so that its columns are checked too and every problem of the stub is reported at once."""
        functions = read_functions(rows, read_types(type_rows))
        if len(functions) != 1:
            return None
        found = match(functions[0], call.params, has_self=call.has_self, typed=False)
        if not isinstance(found, Match):
            return None
        self.function = found.function
        self.polymorphic = _polymorphic(found.function)
        return call.compose(found)

    def signature(self, call: ProcedureCall) -> str:
        params = ", ".join(f"{p.name}: {describe(p.annotation)}" for p in call.params)
        return f"{'.'.join(call.name)}({params})"

    # -- the statement ----------------------------------------------------------------------------------------

    def describe(self, statement: Statement) -> tuple[str | None, pq.abc.PGresult] | None:
        """The statement's parameters and columns, as the server describes it when preparing it with the parameter
        types calls send. If only those types make it fail, the error comes with the description of the statement
        prepared with untyped parameters, so that the parameter at fault can be named."""
        sql, formats, cast = statement.numbered()
        typed = self.param_types(formats, cast)
        res = self._prepare(sql, typed)
        typed_error = None
        if res.status != pq.ExecStatus.COMMAND_OK and typed is not None:
            typed_error = _message(res)
            res = self._prepare(sql, None)
        if res.status != pq.ExecStatus.COMMAND_OK:
            self.problem(f"the server cannot prepare the statement: {_message(res)}", statement.sql, "fix the SQL")
            return None
        return typed_error, res

    def _prepare(self, sql: str, types: list[int] | None) -> pq.abc.PGresult:
        pgconn = self.conn.pgconn
        with self.conn.transaction(force_rollback=True):  # a savepoint: a statement that fails leaves the rest
            res = pgconn.prepare(b"", sql.encode(), types)
            if res.status == pq.ExecStatus.COMMAND_OK:
                res = pgconn.describe_prepared(b"")
        return res

    def param_types(self, formats: list[str], cast: list[bool]) -> list[int] | None:
        """The parameter types a call of a @query stub sends, so that the server prepares the SQL as calls run it.
        A @procedure's arguments are cast to the declared types in the SQL itself, but for polymorphic ones, which
        take their type from the call's values: text stands for them here."""
        call = self.plan.call
        if isinstance(call, ProcedureCall):
            if not self.polymorphic:
                return None
            kinds = iter(self.polymorphic)
            return [0 if c else _TEXT_ARRAY if next(kinds) in POLYMORPHIC_ARRAYS else _TEXT for c in cast]
        if len(call.placeholders) != len(formats):
            return None
        return [
            _sent_type(self.conn, a, f) if oid is None else oid
            for (a, oid), f in zip(call.placeholders, formats, strict=True)
        ]

    def check_params(self, statement: Statement, res: pq.abc.PGresult) -> None:
        call = self.plan.call
        if not isinstance(call, QueryCall):
            return  # a procedure's arguments were matched with the function's declared types
        sources = statement.indices or ()
        types = self.catalog.types(res.param_type(i) for i in range(res.nparams))
        for position, index in enumerate(sources):
            param = self.plan.params[index]
            pgtype = types.get(res.param_type(position))
            if pgtype is not None and not compatible(param.annotation, pgtype):
                self.problem(
                    f"the SQL uses parameter {position + 1} as {pgtype.sql}",
                    f"{param.name}: {describe(param.annotation)}",
                    f"annotate {param.name!r} with a type that fits {pgtype.sql}, or cast it in the SQL",
                )
            elif pgtype is not None:
                self.check_enum(param.annotation, pgtype, f"parameter {param.name!r}")

    def check_columns(self, statement: Statement, res: pq.abc.PGresult) -> None:
        if self.plan.result.shape is Shape.NONE:
            return
        mapper = self.plan.mapper(statement)
        registry = registry_for(self.key) if mapper.uses_registry else None
        if registry is not None:
            probe.describe(self.conn, registry, mapper.missing_types(res, registry))
        try:
            mapper.build(mapper.key(res, self.key), registry, self.conn.adapters)
        except MappingError as err:
            self.problem(err.found or str(err), describe(mapper.row_type), err.fix or "fix the stub or the SQL")
            return
        names = [(res.fname(i) or b"").decode() for i in range(res.nfields)]
        oids = [res.ftype(i) for i in range(res.nfields)]
        types = self.catalog.types(oids)
        if mapper.record is None:
            if mapper.scalar and oids:
                self.check_field(names[0], mapper.row_type, types.get(oids[0]), "the value")
            return
        fields = {f.name: f for f in mapper.record.fields}
        nullable = self.catalog.nullable_columns(res, statement, self.function)
        for name, oid in zip(names, oids, strict=True):
            field = fields.get(name)
            if field is None:
                continue
            where = f"field {describe(mapper.record.cls)}.{field.name}"
            self.check_field(name, field.annotation, types.get(oid), where)
            if name in nullable and not field.nullable:
                column, fix = nullable[name]
                self.problem(
                    f"column {name!r} may be NULL ({column})",
                    f"{where}: {describe(field.annotation)}",
                    f"annotate it `{describe(field.annotation)} | None`{fix}",
                )

    def check_field(self, column: str, annotation: Any, pgtype: PgType | None, where: str) -> None:
        if pgtype is None:
            return
        tp, _ = bare(annotation)
        if tp is not Any and not _is_record(tp) and not compatible(annotation, pgtype):
            self.problem(
                f"column {column!r} is {pgtype.sql}",
                f"{where}: {describe(annotation)}",
                f"annotate it with a type that fits {pgtype.sql}, or cast the column in the SQL",
            )
        self.check_enum(annotation, pgtype, where)

    def check_enum(self, annotation: Any, pgtype: PgType, where: str) -> None:
        tp, _ = bare(annotation)
        if typing.get_origin(tp) is list and pgtype.element is not None:
            (item,) = typing.get_args(tp) or (Any,)
            self.check_enum(item, pgtype.element, where)
            return
        if pgtype.kind != "e":
            return
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            python = {str(m.value) for m in tp}
        elif typing.get_origin(tp) is typing.Literal:
            python = {str(v) for v in typing.get_args(tp)}
        else:
            return
        labels = self.catalog.labels(pgtype)
        lacking = [label for label in labels if label not in python]
        unknown = sorted(python - set(labels))
        if lacking or unknown:
            self.problem(
                f"enum {pgtype.sql} has labels {', '.join(labels)}",
                f"{where}: {describe(tp)} with {', '.join(sorted(python))}",
                "make the Python values the enum's labels"
                + (f" (missing: {', '.join(lacking)})" if lacking else "")
                + (f" (unknown to the database: {', '.join(unknown)})" if unknown else ""),
            )


def _is_record(tp: Any) -> bool:
    return tp is dict or is_structured(tp)


def _sent_type(conn: psycopg.Connection[Any], annotation: Any, fmt: str) -> int:
    """The type oid a call sends for a parameter of *annotation* in placeholder format *fmt*, where pgdecor leaves
    it to psycopg's dumpers (0: untyped, for values whose type depends on the value, such as lists)."""
    tp, _ = bare(annotation)
    if tp is int:
        # A call sends int2, int4 or int8 by magnitude, int2 for the values most calls carry; an int2 converts
        # implicitly wherever any integer type is expected (a bigint would not, to an integer argument).
        return _INT2
    try:
        dumper = conn.adapters.get_dumper(tp, PyFormat.BINARY if fmt == "b" else PyFormat.TEXT)
    except (psycopg.ProgrammingError, TypeError):
        return 0
    return int(getattr(dumper, "oid", 0) or 0)


def _message(res: pq.abc.PGresult) -> str:
    return (res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode()


def _polymorphic(function: Function) -> list[str]:
    """The function's polymorphic arguments, in the order of their (uncast) placeholders."""
    return [arg.type.base for arg in function.args if arg.type.polymorphic]
