"""Rows into a COPY: values of a COPY stub's row type → the rows of a COPY into its table's columns (`RowsIn`), in
binary or text (`copy_format`), each field converted where its column needs it (JSON documents, enum labels,
composites, hstore). Values psycopg's binary dumpers would store as another value are refused first; and when a
row is refused (by pgdecor, psycopg or the server), the error names the row of the stub's rows and the column at
fault (`RowsIn.refused`, `server_error_note`).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import typing
from collections.abc import Callable, Sequence
from functools import partial
from itertools import repeat
from operator import attrgetter, is_not, itemgetter
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import AdaptersMap, PyFormat
from psycopg.types.json import Json, Jsonb
from typing_extensions import is_typeddict

from pgdecor._annotations import bare, describe, is_record_type
from pgdecor._errors import ArgumentError, add_note

from .convert import JSON_OIDS, Convert, enum_label, hstore_param, list_of
from .copy_format import Column, binary_oid
from .json_dump import NotJsonError, to_json
from .records import Field, Record, record_of
from .registry import TypeRegistry

__all__ = ["RowsIn", "server_error_note"]

_BINARY = pq.Format.BINARY
_DATE_OID, _JSON_OID = 1082, 114
#: Integer columns whose binary form psycopg would fill with the low bits of a larger value: checked first.
_INT_RANGES = {21: (-(2**15), 2**15 - 1), 23: (-(2**31), 2**31 - 1)}
_INT_ARRAYS = {1005: 21, 1007: 23}
_not_none = partial(is_not, None)


def _getter(record: Record, fields: list[Field]) -> Callable[[Any], Sequence[Any]]:
    """A row object → the tuple of its fields' values, in C (``attrgetter``, ``itemgetter``)."""
    if record.by_mapping:
        keys = [f.name for f in fields]
        return itemgetter(*keys) if len(keys) > 1 else lambda row: (row[keys[0]],)
    names = [f.attribute for f in fields]
    if len(names) > 1:
        return attrgetter(*names)
    get = attrgetter(names[0])
    return lambda row: (get(row),)


class RowsIn:
    """How values of a COPY stub's row type become the rows of its COPY into the table's columns."""

    __slots__ = ("_checks", "_converters", "_get", "binary", "columns", "fields", "stub", "table", "types", "where")

    def __init__(
        self,
        stub: str,
        where: str,
        table: str,
        record: Record,
        pairs: list[tuple[Field, Column]],
        *,
        registry: TypeRegistry,
        adapters: AdaptersMap,
    ) -> None:
        self.stub, self.where, self.table = stub, where, table
        self.fields = [f for f, _ in pairs]
        self.columns = [c for _, c in pairs]
        oids = [binary_oid(c, adapters) for c in self.columns]
        self.binary = all(oid is not None for oid in oids)
        #: The types psycopg dumps each column's values as, for a binary COPY.
        self.types: list[int] = [oid for oid in oids if oid is not None] if self.binary else []
        self._get = _getter(record, self.fields)
        self._converters = [
            (i, convert)
            for i, (f, c) in enumerate(pairs)
            if (convert := _converter(f.annotation, c.oid, registry, binary=self.binary)) is not None
        ]
        #: What psycopg's binary dumpers would not refuse but store as another value.
        self._checks = [found[0] for i, c in enumerate(self.columns) if (found := _check(c, i))] if self.binary else []

    def row(self, value: Any) -> Sequence[Any]:
        """One row object → the values of its columns, converted where the column needs it."""
        values = self._get(value)
        if not self._converters:
            return values
        out = list(values)
        for i, convert in self._converters:
            if out[i] is not None:
                out[i] = convert(out[i])
        return out

    def rows(self, batch: list[Any]) -> list[Sequence[Any]]:
        """The rows of *batch*, checked where psycopg would store another value than the one given; raises
        whatever a value raises (`refused` then finds the row and the column)."""
        rows = list(map(self._get, batch)) if not self._converters else list(map(self.row, batch))
        for check in self._checks:
            if not check(rows):
                msg = "a value its column would not store as given"
                raise ValueError(msg)
        return rows

    def refused(self, batch: list[Any], first: int, err: Exception, adapters: AdaptersMap) -> ArgumentError | None:
        """The `ArgumentError` (caused by *err*) naming the row of *batch* (whose first row is row *first* of the
        stub's rows) and the column whose value made *err*, found by trying each value of each row alone; None,
        *err* noted, if no value fails alone."""
        for offset, value in enumerate(batch):
            problem = self._problem(value, adapters)
            if problem is not None:
                column, said = problem
                at = f"{self.where}[{first + offset}]"
                where = f"{at}.{column.name}" if column is not None else at
                msg = f"{self.stub}(): {where} {said}; the COPY into {self.table} stopped, and stored nothing"
                refusal = ArgumentError(msg)
                refusal.__cause__ = err
                return refusal
        add_note(err, f"{self.stub}: while sending rows {first} to {first + len(batch) - 1} of {self.where}")
        return None

    def _problem(self, value: Any, adapters: AdaptersMap) -> tuple[Column | None, str] | None:
        """The column at fault in the row object *value*, and what is wrong; None if nothing is."""
        try:
            values = self._get(value)
        except (AttributeError, KeyError, TypeError):
            fields = ", ".join(f.name for f in self.fields)
            return None, f"is {_shown(value)}, which has no field of one of the columns ({fields})"
        converters = dict(self._converters)
        for i, (field, column) in enumerate(zip(self.fields, self.columns, strict=True)):
            v = values[i]
            if v is None:
                continue
            convert = converters.get(i)
            try:
                sent = convert(v) if convert is not None else v
            except NotJsonError as err:
                return column, f"{err}, so column {column.name!r} ({column.sql}) cannot hold it as JSON"
            except Exception:  # noqa: BLE001 - whatever the conversion raises, the value is the culprit
                return column, _unfit(v, field, column)
            checked = _check(column, i) if self.binary else None
            if checked is not None and (said := checked[1](sent)) is not None:
                return column, said
            if _undumpable(sent, column, self.types[i] if self.binary else None, adapters):
                return column, _unfit(v, field, column)
        return None


def _shown(value: Any) -> str:
    shown = repr(value)
    return f"{type(value).__qualname__} {shown if len(shown) <= 60 else shown[:57] + '...'}"


def _unfit(value: Any, field: Field, column: Column) -> str:
    return (
        f"is {_shown(value)}, which column {column.name!r} ({column.sql}) does not take (the field is annotated "
        f"{describe(field.annotation)})"
    )


def _undumpable(value: Any, column: Column, oid: int | None, adapters: AdaptersMap) -> bool:
    """Whether psycopg refuses to dump *value* for *column* (as *oid*'s binary form, or as text by its type)."""
    try:
        if oid is not None:
            dumper = adapters.get_dumper_by_oid(oid, _BINARY)(type(value), adapters)
        else:
            dumper = adapters.get_dumper(type(value), PyFormat.TEXT)(type(value), adapters)
        dumper.dump(value)
    except Exception:  # noqa: BLE001 - whatever psycopg raises, it refuses the value
        return True
    return column.oid == _DATE_OID and isinstance(value, dt.datetime)


def _check(column: Column, index: int) -> tuple[Callable[[list[Any]], bool], Callable[[Any], str | None]] | None:
    """For a column (at *index* in the rows) whose binary dumper would store another value than the one given (an
    int2 or int4 column's the low bits of a larger int, a date column's the date of a datetime): whether a batch of
    rows is sound, in passes in C, and what is wrong with one value (None if nothing)."""
    get = itemgetter(index)
    bounds = _INT_RANGES.get(column.oid) or _INT_RANGES.get(_INT_ARRAYS.get(column.oid, 0))
    if bounds is not None:
        low, high = bounds
        kind = "int2" if low == -(2**15) else "int4"
        if column.oid in _INT_RANGES:

            def ints(rows: list[Any]) -> bool:
                if not rows:
                    return True
                try:
                    lowest: int = min(map(get, rows))
                    return low <= lowest and max(map(get, rows)) <= high
                except TypeError:  # NULLs among them, or not only ints
                    present = list(filter(_not_none, map(get, rows)))
                    try:
                        return not present or (low <= min(present) and max(present) <= high)
                    except TypeError:  # not only ints: the dumper refuses the odd one out
                        return False

            def int_problem(value: Any) -> str | None:
                if isinstance(value, int) and not low <= value <= high:
                    return f"is {value}, out of the range of {kind} column {column.name!r}"
                return None

            return ints, int_problem

        def in_range(value: Any) -> bool:
            if isinstance(value, list):
                return all(in_range(v) for v in value)
            return value is None or not isinstance(value, int) or low <= value <= high

        def array_problem(value: Any) -> str | None:
            if in_range(value):
                return None
            return f"holds an integer out of the range of the {kind} elements of column {column.name!r}"

        return (lambda rows: all(map(in_range, map(get, rows)))), array_problem
    if column.oid == _DATE_OID:

        def dates(rows: list[Any]) -> bool:
            return not any(map(isinstance, map(get, rows), repeat(dt.datetime)))

        def date_problem(value: Any) -> str | None:
            if isinstance(value, dt.datetime):
                return f"is a datetime, whose time date column {column.name!r} would drop; pass its .date()"
            return None

        return dates, date_problem
    return None


def _converter(annotation: Any, oid: int, registry: TypeRegistry, *, binary: bool) -> Convert | None:
    """How a non-None value of a field annotated *annotation* becomes what psycopg sends for a column of type
    *oid*: JSON documents checked and made of JSON's own types, enum members as their labels, objects bound for a
    composite as the tuple of its attributes; None where the value is sent as it is."""
    tp, _ = bare(annotation)
    if oid in JSON_OIDS:
        if binary:  # psycopg's dumper for the column's type writes the document
            return to_json
        wrap = Json if oid == _JSON_OID else Jsonb
        return lambda v: wrap(to_json(v))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return enum_label
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp) or (Any,)
        element = registry.element(oid)
        if element is None:
            return None
        inner = oid if typing.get_origin(bare(item)[0]) is list else element
        convert = _converter(item, inner, registry, binary=binary)
        return None if convert is None else list_of(convert)
    base = registry.domains.get(oid, oid)
    info = registry.composites.get(base)
    if info is not None and is_record_type(tp) and not is_typeddict(tp):
        return _composite(record_of(tp), list(info.field_names), list(info.field_types), registry)
    if info is None and (tp is dict or typing.get_origin(tp) is dict) and base not in JSON_OIDS and not binary:
        return hstore_param
    return None


def _composite(record: Record, names: list[str], oids: list[int], registry: TypeRegistry) -> Convert:
    """An object → the tuple of a composite type's attributes (*names*, of types *oids*), each converted as a
    column's value is; an attribute the class has no field for is NULL."""
    by_name = {f.name: f for f in record.fields}
    parts: list[tuple[Callable[[Any], Any] | None, Convert | None]] = []
    for name, oid in zip(names, oids, strict=True):
        field = by_name.get(name)
        if field is None:
            parts.append((None, None))
            continue
        get: Callable[[Any], Any] = attrgetter(field.attribute)
        parts.append((get, _converter(field.annotation, oid, registry, binary=False)))

    def convert(value: Any) -> tuple[Any, ...]:
        out: list[Any] = []
        for get, inner in parts:
            v = None if get is None else get(value)
            out.append(v if v is None or inner is None else inner(v))
        return tuple(out)

    return convert


_LINE = re.compile(r"\D*(\d+)(?:, \S+ ([^:]*))?")


def server_error_note(stub: str, where: str, table: tuple[str, ...], err: psycopg.Error) -> str:
    """The note for a database error a COPY into *table* raised: the row of the stub's rows (parameter *where*)
    and the column the server names, where it names them (in the error's context: ``COPY users, line 3, column
    id``; numbers are read, not words, whatever language the server speaks)."""
    line = column = None
    prefix = f"COPY {table[-1]}, "
    for text in (err.diag.context or "").splitlines():
        if text.startswith(prefix) and (m := _LINE.match(text[len(prefix) :])) is not None:
            line, column = int(m[1]), m[2]
    column = err.diag.column_name or column
    name = ".".join(table)
    if line is None:
        return f"{stub}: the COPY into {name} failed, and stored nothing"
    at = f"{where}[{line - 1}]" + (f", column {column!r}" if column else "")
    return f"{stub}: the server refused {at} (line {line} of the COPY into {name}); the COPY stored nothing"
