"""COPY stubs (`pgdecor.copy_in`, `pgdecor.copy_out`): what is read once from a stub (`CopyPlan`), the catalog
query for the columns of the table it names, and what its COPYs on one server need (`CopyIn`, `CopyOut`: the
columns matched with the row type's fields by name, the statement, and how the rows travel, see `_rows.copy_in`
and `_rows.copy_out`), made at its first COPY there and kept. No I/O: `_run.copy_async` (and its generated
`_run.copy`) runs them.
"""

from __future__ import annotations

import collections.abc
import enum
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from psycopg.abc import AdaptContext

from pgdecor._annotations import bare, describe, is_record_type, strip_annotated
from pgdecor._errors import MappingError, SignatureError
from pgdecor._rows.copy_format import Column
from pgdecor._rows.copy_in import RowsIn
from pgdecor._rows.copy_out import RowsOut
from pgdecor._rows.records import Record, record_of
from pgdecor._rows.registry import ServerKey, TypeRegistry

__all__ = ["COLUMNS_QUERY", "CopyIn", "CopyOut", "CopyPlan", "Direction", "read_columns", "read_copy_stub"]


class Direction(enum.Enum):
    """Which way a COPY stub's rows go, named by its decorator."""

    IN = "copy_in"
    OUT = "copy_out"


#: The table's columns and their types (a domain's base type, as results describe it), one row per column; one row
#: of NULL columns for a relation without any; none if there is no such relation. The name is read as the server
#: reads a relation's name, with the session's search_path; every operator and function is named with its schema.
COLUMNS_QUERY = """
SELECT c.relkind::pg_catalog.text, a.attname::pg_catalog.text,
       (CASE WHEN t.typtype OPERATOR(pg_catalog.=) 'd' THEN t.typbasetype ELSE t.oid END)::pg_catalog.int8,
       pg_catalog.format_type(a.atttypid, a.atttypmod), b.typtype::pg_catalog.text, a.attnotnull,
       a.atthasdef OR a.attidentity OPERATOR(pg_catalog.<>) ''::pg_catalog."char"
                   OR a.attgenerated OPERATOR(pg_catalog.<>) ''::pg_catalog."char",
       a.attgenerated OPERATOR(pg_catalog.<>) ''::pg_catalog."char"
FROM pg_catalog.pg_class c
LEFT JOIN pg_catalog.pg_attribute a
  ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
LEFT JOIN pg_catalog.pg_type b
  ON b.oid OPERATOR(pg_catalog.=) CASE WHEN t.typtype OPERATOR(pg_catalog.=) 'd' THEN t.typbasetype ELSE t.oid END
WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(%s::pg_catalog.text)::pg_catalog.oid
ORDER BY a.attnum
"""

#: Relations a COPY reads from directly (``COPY t (a, b) TO STDOUT``); of any other kind (a view, a partitioned
#: table), through a query.
_PLAIN_TABLES = frozenset({"r"})


def read_columns(rows: list[tuple[Any, ...]]) -> tuple[str, list[Column]] | None:
    """The relation's kind (``pg_class.relkind``) and its columns, from `COLUMNS_QUERY`'s rows; None if there is no
    such relation."""
    if not rows:
        return None
    columns = [
        Column(name, oid, spelled, kind or "b", not_null, has_default, generated)
        for _, name, oid, spelled, kind, not_null, has_default, generated in rows
        if name is not None
    ]
    return rows[0][0], columns


@dataclass(frozen=True)
class CopyIn:
    """A COPY stub's COPY into its table, on one server."""

    statement: sql.Composed
    rows: RowsIn


@dataclass(frozen=True)
class CopyOut:
    """A COPY stub's COPY out of its table, on one server."""

    statement: sql.Composed
    rows: RowsOut


@dataclass
class CopyPlan:
    """What a COPY stub is (see the module docstring)."""

    stub: str
    table: tuple[str, ...]
    direction: Direction
    row_type: type
    record: Record
    #: The parameter the rows come in (COPY in), named in messages about them (``rows[3]``).
    param: str
    is_async: bool
    #: A plain ``def`` stub annotated ``-> AsyncIterator[T]``: its stream runs at its first ``anext``.
    lazy: bool
    #: The SQL of the COPY statement `prepare` composed last (one per server): the stub's ``.sql``.
    composed: str | None = field(default=None, init=False)
    _servers: dict[ServerKey, CopyIn | CopyOut] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The table as the stub names it."""
        return ".".join(self.table)

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(*self.table)

    def prepared(self, key: ServerKey) -> CopyIn | CopyOut | None:
        return self._servers.get(key)

    def forget(self, key: ServerKey) -> None:
        """Read the catalog again at the next COPY on *key*: its table may have changed."""
        self._servers.pop(key, None)

    def prepare(
        self, key: ServerKey, relation: tuple[str, list[Column]] | None, registry: TypeRegistry, conn: AdaptContext
    ) -> CopyIn | CopyOut:
        """What a COPY on *key* needs, from what the catalog said of the table (`read_columns`); its types
        described in *registry* already, its statement spelled as *conn* sends it. Raises `MappingError` if the
        table and the row type do not agree."""
        if relation is None:
            raise MappingError.mismatch(
                self.stub,
                f"there is no table {self.name} (the name read with the session's search_path)",
                "create it, or name the table the stub copies",
            )
        kind, found = relation
        adapters = conn.adapters
        columns = {c.name: self._resolved(c, registry) for c in found}
        target = describe(self.row_type)
        prepared: CopyIn | CopyOut
        if self.direction is Direction.IN:
            pairs = []
            for f in self.record.fields:
                column = columns.get(f.name)
                if column is None:
                    raise MappingError.mismatch(
                        self.stub,
                        f"table {self.name} has no column {f.name!r} for field {target}.{f.name}",
                        "add the column, or leave the field out of the rows' type",
                    )
                if column.generated:
                    raise MappingError.mismatch(
                        self.stub,
                        f"column {f.name!r} of {self.name} is generated, and a COPY cannot write it",
                        f"leave the field {target}.{f.name} out of the rows' type",
                    )
                pairs.append((f, column))
            rows_in = RowsIn(self.stub, self.param, self.name, self.record, pairs, registry=registry, adapters=adapters)
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
                self.identifier, _names(rows_in.columns), sql.SQL("BINARY" if rows_in.binary else "TEXT")
            )
            prepared = CopyIn(statement, rows_in)
        else:
            missing = [f.name for f in self.record.fields if f.name not in columns and not f.has_default]
            if missing:
                raise MappingError.mismatch(
                    self.stub,
                    f"table {self.name} has no column {missing[0]!r} for field {target}.{missing[0]}",
                    "add the column, or give the field a default",
                )
            selected = [columns[f.name] for f in self.record.fields if f.name in columns]
            rows_out = RowsOut(
                self.stub, self.name, self.row_type, selected, key=key, registry=registry, adapters=adapters
            )
            if kind in _PLAIN_TABLES:
                source = sql.SQL("{} ({})").format(self.identifier, _names(selected))
            else:
                source = sql.SQL("(SELECT {} FROM {})").format(_names(selected), self.identifier)
            statement = sql.SQL("COPY {} TO STDOUT (FORMAT {})").format(
                source, sql.SQL("BINARY" if rows_out.binary else "TEXT")
            )
            prepared = CopyOut(statement, rows_out)
        self._servers[key] = prepared
        self.composed = prepared.statement.as_string(conn)
        return prepared

    @staticmethod
    def _resolved(column: Column, registry: TypeRegistry) -> Column:
        """*column* with its type a domain's base type, through domains over domains too."""
        oid = column.oid
        while oid in registry.domains:
            oid = registry.domains[oid]
        if oid == column.oid:
            return column
        return Column(column.name, oid, column.sql, "d", column.not_null, column.has_default, column.generated)


def _names(columns: list[Column]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)


# -- reading a stub ----------------------------------------------------------------------------------------------

_SYNC_ROWS = (
    collections.abc.Iterable,
    collections.abc.Iterator,
    collections.abc.Collection,
    collections.abc.Sequence,
    list,
    tuple,
)
_ASYNC_ROWS = (collections.abc.AsyncIterable, collections.abc.AsyncIterator)
_SYNC_STREAMS = (collections.abc.Iterator, collections.abc.Iterable)
_ASYNC_STREAMS = (collections.abc.AsyncIterator, collections.abc.AsyncIterable)


def read_copy_stub(
    stub: str,
    table: tuple[str, ...],
    direction: Direction,
    params: list[tuple[str, Any]],
    returns: Any,
    *,
    coroutine: bool,
    streams: tuple[type, type] = (collections.abc.Iterator, collections.abc.AsyncIterator),
) -> CopyPlan:
    """The plan of a COPY stub named *stub*, from its parameters (name, resolved annotation) and its resolved
    return annotation; *coroutine* says it is an ``async def``, *streams* are the classes of the streams of COPYs
    out (sync, async), which may be its return annotation too. Raises `SignatureError` for what cannot be one."""
    if direction is Direction.IN:
        example = "def load(rows: Iterable[User]) -> int"
        if len(params) != 1:
            msg = f"{stub}: a @copy_in stub takes one parameter, the rows to copy (`{example}`), not {len(params)}"
            raise SignatureError(msg)
        (param, annotation), out = params[0], bare(returns)[0]
        if out not in (int, None, type(None)):
            msg = f"{stub}: a @copy_in stub returns the number of rows copied: annotate it `-> int` (or `-> None`)"
            raise SignatureError(msg)
        row_type, is_async_rows = _rows_type(stub, param, annotation, coroutine=coroutine, example=example)
        return _plan(stub, table, direction, row_type, param, is_async=coroutine or is_async_rows, lazy=False)
    if params:
        msg = f"{stub}: a @copy_out stub takes no parameters (`def export() -> Iterator[User]`)"
        raise SignatureError(msg)
    tp = strip_annotated(returns)
    origin = typing.get_origin(tp)
    is_async = origin in (*_ASYNC_STREAMS, streams[1])
    if not is_async and origin not in (*_SYNC_STREAMS, streams[0]):
        msg = (
            f"{stub}: a @copy_out stub returns the rows as they come: annotate it `-> Iterator[T]` "
            f"(`-> AsyncIterator[T]` in async code), or `-> {streams[0].__name__}[T]` to close it early, not "
            f"{describe(returns)}"
        )
        raise SignatureError(msg)
    if coroutine and not is_async:
        msg = f"{stub}: an async @copy_out stub returns `AsyncIterator[T]`, not {describe(returns)}"
        raise SignatureError(msg)
    (row_type,) = typing.get_args(tp) or (Any,)
    row_type = _row_type(stub, strip_annotated(row_type), f"`-> {origin.__name__}[User]`")
    return _plan(stub, table, direction, row_type, "", is_async=is_async, lazy=is_async and not coroutine)


def _rows_type(stub: str, param: str, annotation: Any, *, coroutine: bool, example: str) -> tuple[type, bool]:
    """The row type of a @copy_in stub's parameter *param*, and whether it may be an async iterable."""
    tp = strip_annotated(annotation)
    members = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    items: list[Any] = []
    is_async = False
    for member in members:
        origin = typing.get_origin(member) or member
        if origin in _ASYNC_ROWS:
            if not coroutine:
                msg = (
                    f"{stub}: parameter {param!r} is {describe(annotation)}, which a sync stub cannot read; "
                    f"declare the stub `async def`, or take an Iterable"
                )
                raise SignatureError(msg)
            is_async = True
        elif origin not in _SYNC_ROWS:
            msg = (
                f"{stub}: parameter {param!r} is {describe(annotation)}; a @copy_in stub takes the rows as an "
                f"Iterable of a row type (`{example}`)" + ("" if not coroutine else ", or an AsyncIterable")
            )
            raise SignatureError(msg)
        args = typing.get_args(member)
        items.append(strip_annotated(args[0]) if args else Any)
    if len(set(items)) != 1:
        msg = f"{stub}: parameter {param!r} mixes row types ({describe(annotation)}); take rows of one type"
        raise SignatureError(msg)
    return _row_type(stub, items[0], f"`{example}`"), is_async


def _row_type(stub: str, tp: Any, example: str) -> type:
    if not is_record_type(tp) or not isinstance(tp, type):
        msg = (
            f"{stub}: the rows of a COPY stub are of a row type (a dataclass, NamedTuple, TypedDict, pydantic "
            f"model, attrs class or msgspec Struct), not {describe(tp)}: {example}"
        )
        raise SignatureError(msg)
    return tp


def _plan(
    stub: str, table: tuple[str, ...], direction: Direction, row_type: type, param: str, *, is_async: bool, lazy: bool
) -> CopyPlan:
    record = record_of(row_type)
    if not record.fields:
        msg = f"{stub}: {describe(row_type)} has no fields, so its rows have no columns to copy"
        raise SignatureError(msg)
    return CopyPlan(stub, table, direction, row_type, record, param, is_async=is_async, lazy=lazy)
