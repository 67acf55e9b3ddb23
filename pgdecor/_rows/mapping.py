"""Row mapping: a result's columns → the stub's row type, matched by column name.

A `RowMapper` is built once per stub. For each result, the runner looks up the `Layout` of its column names and
types, which the mapper makes once per distinct layout (a record's in `layouts`, where the columns are checked
against the fields; a single value's and a dict's here) and keeps; the layout turns the tuples psycopg fetched into
row-type values, so the per-row work is a tuple reorder at most and one constructor call, driven from C for whole
lists.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, NoReturn

import psycopg
from psycopg import pq
from psycopg.adapt import AdaptersMap
from psycopg.types.hstore import HstoreLoader
from typing_extensions import is_typeddict

from pgdecor._annotations import bare, describe, is_dict_row, is_record_type
from pgdecor._codegen import define
from pgdecor._errors import MappingError, add_note

from .convert import JSON_OIDS
from .layouts import Layout, LayoutKey, column_converter, each, json_note, record_layout
from .records import record_of
from .registry import ServerKey, TypeRegistry


def needs_registry(annotation: Any) -> bool:
    """Whether values of *annotation* may come in a type psycopg needs describing to load (composite, array of
    an extension or enum type, hstore): such columns are described through the catalog at first sight."""
    tp, _ = bare(annotation)
    origin = typing.get_origin(tp)
    if origin in (list, dict) or tp is dict:
        return True
    return is_record_type(tp) and not is_typeddict(tp)


#: Result types loaded differently in text and binary (a record's fields come as strings in text), or with no
#: loader of their own: their columns keep a statement in text.
_TEXT_ONLY_OIDS = frozenset({0, 2249, 2287})


_COLUMNS: dict[int, Callable[[pq.abc.PGresult], tuple[Any, ...]]] = {}


def _columns_function(n: int) -> Callable[[pq.abc.PGresult], tuple[Any, ...]]:
    """``lambda res: (res.fname(0), ..., res.ftype(n - 1))``, unrolled: the layout check runs on every call."""
    items = [f"name({i})" for i in range(n)] + [f"oid({i})" for i in range(n)]
    src = (
        f"def columns(res):\n    name, oid = res.fname, res.ftype\n    return ({', '.join(items)}{',' if n else ''})\n"
    )
    _COLUMNS[n] = define(src, "columns", "column list")
    return _COLUMNS[n]


class RowMapper:
    """The mapping of one stub's rows onto its row type, specialised once per distinct result layout.

    Rows are fetched as tuples (psycopg's fastest path); for each result the runner looks up its `Layout` by
    column names and types, and lets it build the values: a whole list at a time, so that for a plain
    dataclass the per-row work is one constructor call driven from C.
    """

    def __init__(self, stub: str, sql_object: str, row_type: Any, *, scalar: bool, nullable: bool) -> None:
        self.stub = stub
        self.sql_object = sql_object
        self.row_type = row_type
        self.scalar = scalar
        self.nullable = nullable
        self.record = None if scalar or is_dict_row(row_type) else record_of(row_type)
        self._layouts: dict[LayoutKey, Layout] = {}
        annotations = [f.annotation for f in self.record.fields] if self.record else [row_type]
        self.uses_registry = any(needs_registry(a) for a in annotations)

    def key(self, res: pq.abc.PGresult, server: ServerKey) -> LayoutKey:
        """The result's column names then type oids (flat, as cheap to hash as can be), after the server if
        the row type needs types described per server."""
        n = res.nfields
        columns = (_COLUMNS.get(n) or _columns_function(n))(res)
        return (server, *columns) if self.uses_registry else columns

    def cached(self, key: LayoutKey) -> Layout | None:
        return self._layouts.get(key)

    def missing_types(self, res: pq.abc.PGresult, registry: TypeRegistry) -> list[int]:
        """Oids of this result's columns that must be described before its rows can be made."""
        return registry.missing([oid for oid, annotation in self._columns(res) if needs_registry(annotation)])

    def _columns(self, res: pq.abc.PGresult) -> list[tuple[int, Any]]:
        if self.scalar or self.record is None:  # a dict of one column is its value (see `_make`)
            return [(res.ftype(0), self.row_type)] if res.nfields == 1 or (self.scalar and res.nfields) else []
        assert self.record is not None
        by_name = {f.name: f.annotation for f in self.record.fields}
        return [(res.ftype(i), by_name.get(_name(res, i), Any)) for i in range(res.nfields)]

    def build(self, key: LayoutKey, registry: TypeRegistry | None, adapters: AdaptersMap) -> Layout:
        """Make (and keep) the layout for *key*; its types must be described already."""
        columns = key[1:] if self.uses_registry else key
        half = len(columns) // 2
        names = [(n or b"").decode() for n in columns[:half]]
        oids: list[int] = list(columns[half:])
        layout = self._make(names, oids, registry, adapters)
        binary = all(
            oid not in _TEXT_ONLY_OIDS
            and not (registry is not None and oid in registry.parsed)
            and adapters.get_loader(oid, pq.Format.BINARY) is not None
            and adapters.get_loader(oid, pq.Format.TEXT) is not None
            for oid in oids
        )
        layout = Layout(layout.one, layout.many, binary)
        self._layouts[key] = layout
        return layout

    def _make(self, names: list[str], oids: list[int], registry: TypeRegistry | None, adapters: AdaptersMap) -> Layout:
        if self.scalar:
            return self._scalar_layout(names, oids, registry, adapters)
        if self.record is None:
            if len(names) == 1:
                return self._document(names, oids, registry, adapters)
            return each(lambda values: dict(zip(names, values, strict=True)))
        where = f"{self.sql_object} returned"
        source = f"the row {where}"
        return record_layout(
            self.stub, self.record, names, oids, registry, adapters=adapters, where=where, source=source
        )

    def _document(
        self, names: list[str], oids: list[int], registry: TypeRegistry | None, adapters: AdaptersMap
    ) -> Layout:
        """A dict of one column: its value, a json or jsonb document (or an hstore), as a function returning one
        gives it; the row as a dict is for results of several columns."""
        loader = registry.adapters.get_loader(oids[0], pq.Format.TEXT) if registry is not None else None
        if oids[0] in JSON_OIDS or (isinstance(loader, type) and issubclass(loader, HstoreLoader)):
            return self._scalar_layout(names, oids, registry, adapters)
        info = psycopg.adapters.types.get(oids[0])
        raise MappingError.mismatch(
            self.stub,
            f"{self.sql_object} returned one column, {names[0]!r} of type {info.name if info else oids[0]}, but the "
            f"stub returns {describe(self.row_type)}, which of one column is its json or jsonb document",
            "annotate the column's own type; for the row as a dict, return a TypedDict",
        )

    def _scalar_layout(
        self, names: list[str], oids: list[int], registry: TypeRegistry | None, adapters: AdaptersMap
    ) -> Layout:
        if not names and self.row_type is int and not self.nullable:  # a command: `-> int` is its row count
            return each(_no_rows)
        if len(names) != 1:
            raise MappingError.mismatch(
                self.stub,
                f"{self.sql_object} returned {len(names)} columns ({', '.join(names)}) but the stub returns a "
                f"single {describe(self.row_type)}",
                "select one column, or return a dataclass",
            )
        where = f"column {names[0]!r}"
        convert = column_converter(self.stub, self.row_type, oids[0], registry, adapters, where=where)
        stub, column, nullable, row_type = self.stub, names[0], self.nullable, self.row_type

        def null_error() -> NoReturn:
            msg = (
                f"{stub}: column {column!r} is NULL but the stub returns {describe(row_type)}; "
                f"annotate it `{describe(row_type)} | None` or make the SQL return a value"
            )
            raise MappingError(msg)

        first = itemgetter(0)
        if convert is None:

            def one(values: Sequence[Any]) -> Any:
                value = values[0]
                if value is None and not nullable:
                    null_error()
                return value

            def many(rows: list[Any]) -> list[Any]:
                out = list(map(first, rows))
                if not nullable and None in out:
                    null_error()
                return out

            return Layout(one, many, binary=False)

        note = json_note(stub, row_type, oids[0], where)

        def one_converted(values: Sequence[Any]) -> Any:
            value = values[0]
            if value is None:
                if nullable:
                    return None
                null_error()
            try:
                return convert(value)
            except Exception as err:
                if note:
                    add_note(err, note)
                raise

        return each(one_converted)


def _no_rows(values: Sequence[Any]) -> NoReturn:
    raise AssertionError(values)  # pragma: no cover - a command's result is counted, never fetched


def _name(res: pq.abc.PGresult, i: int) -> str:
    return (res.fname(i) or b"").decode()
