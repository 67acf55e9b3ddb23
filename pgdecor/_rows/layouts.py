"""Layouts: how the rows of one result layout (its column names and types) become values of a row type. The columns
are checked against the record's fields once (by name: none twice, none without a field, no field without a
column or a default), each column's value gets the converter its field's annotation needs (`column_converter`:
enums, JSON documents, composites, arrays of them), and the record is built by code specialised for that layout
(`record_layout`), so that the per-row work is a tuple reorder at most and one constructor call, driven from C for
whole lists. A composite column is a record of its own, made the same way.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import starmap
from operator import itemgetter
from typing import Any

import psycopg
from psycopg.adapt import AdaptersMap
from typing_extensions import is_typeddict

from pgdecor._annotations import bare, describe, is_record_type
from pgdecor._codegen import define
from pgdecor._errors import MappingError, add_note

from .convert import JSON_OIDS, Convert, enum_loader, list_of
from .json_load import from_json, needs_json_conversion
from .loaders import mismatch
from .records import Record, record_of
from .registry import TypeRegistry

One = Callable[[Sequence[Any]], Any]
Many = Callable[[list[Any]], list[Any]]


@dataclass(frozen=True, slots=True)
class Layout:
    """How the rows of one column layout (names and types) become values of the stub's row type."""

    #: One row (a tuple) → a value.
    one: Callable[[Sequence[Any]], Any]
    #: A list of rows → a list of values, with the per-row work in C where it can be.
    many: Callable[[list[Any]], list[Any]]
    #: Whether every column loads into the same Python value from binary as from text.
    binary: bool


#: The cache key of a result's layout: see `RowMapper.key`.
LayoutKey = tuple[Any, ...]


def each(one: Callable[[Sequence[Any]], Any]) -> Layout:
    """A layout whose rows are made one by one."""
    return Layout(*_pair(one), binary=False)


def column_converter(
    stub: str, annotation: Any, oid: int, registry: TypeRegistry | None, adapters: AdaptersMap, *, where: str
) -> Convert | None:
    """How a non-NULL value of a column of type *oid* becomes a value of *annotation*; None if it already is.
    Raise `MappingError` when it cannot (see `_rows.loaders`)."""
    tp, _ = bare(annotation)
    if tp is Any or tp is object:
        return None
    if oid in JSON_OIDS:
        return from_json(tp) if needs_json_conversion(tp) else None
    if registry is None or oid not in registry.parsed:
        wrong = mismatch(tp, oid, adapters)
        if wrong is not None:
            raise MappingError.mismatch(stub, f"{where} {wrong[0]}", wrong[1])
    raw: Convert | None = None
    if registry is not None and oid in registry.parsed and tp is not str:
        load = registry.load
        raw = lambda v: load(oid, v) if isinstance(v, str) else v  # noqa: E731 - a closure over oid
    shape = _shaper(stub, tp, oid, registry, adapters, where=where)
    if raw is None or shape is None:
        return raw or shape
    return lambda v: shape(raw(v))


def _shaper(
    stub: str, tp: Any, oid: int, registry: TypeRegistry | None, adapters: AdaptersMap, *, where: str
) -> Convert | None:
    """How a loaded value (str for an enum, tuple for a composite, list for an array) becomes a *tp*."""
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return enum_loader(tp)
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp) or (Any,)
        element = registry.element(oid) if registry is not None else _builtin_element(oid)
        if element is None:
            return None
        # PostgreSQL arrays of any dimension share one type: the items of a list[list[T]] are of the array's.
        inner = oid if typing.get_origin(bare(item)[0]) is list else element
        convert = column_converter(stub, item, inner, registry, adapters, where=f"{where} (an element)")
        return None if convert is None else list_of(convert)
    if is_record_type(tp) and not is_typeddict(tp):
        info = registry.composites.get(oid) if registry is not None else None
        if info is None:
            raise MappingError.mismatch(
                stub,
                f"{where} cannot fill {describe(tp)}: it is not a composite or json value (type oid {oid})",
                "select a row-typed column, or annotate the field with the column's type",
            )
        names, oids = list(info.field_names), list(info.field_types)
        record = record_of(tp)
        where = f"{where} (type {info.name})"
        source = f"the value of {where}"
        return record_layout(
            stub, record, names, oids, registry, adapters=adapters, where=f"{where} has", source=source
        ).one
    return None


def _builtin_element(oid: int) -> int | None:
    info = psycopg.adapters.types.get(oid)
    return info.oid if info is not None and info.array_oid == oid else None


def record_layout(
    stub: str,
    record: Record,
    names: list[str],
    oids: list[int],
    registry: TypeRegistry | None,
    *,
    adapters: AdaptersMap,
    where: str,
    source: str,
) -> Layout:
    """Specialise the row making for one column layout; raise MappingError if the columns do not fit the fields.
    *where* starts the messages about the columns, *source* names what the values are (for notes)."""
    cls = record.cls
    field_names = [f.name for f in record.fields]
    target = describe(cls) if not record.by_mapping or cls is not dict else "the TypedDict"
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise MappingError.mismatch(
            stub, f"{where} the column {dupes[0]!r} twice", "alias one of them (`AS other_name`)"
        )
    extra = [n for n in names if n not in field_names]
    if extra and not record.extra_allowed:
        raise MappingError.mismatch(
            stub,
            f"{where} column {extra[0]!r} which {target} has no field for",
            f"add a field {extra[0]!r} or stop selecting it",
        )
    missing = [f.name for f in record.fields if f.name not in names and not f.has_default]
    if missing:
        raise MappingError.mismatch(
            stub,
            f"{where} no column {missing[0]!r} for field {target}.{missing[0]}",
            f"select it (columns were: {', '.join(names)}) or give the field a default",
        )

    by_field = {f.name: f for f in record.fields}
    not_null = [(i, n) for i, n in enumerate(names) if n in by_field and not by_field[n].nullable]
    converters = [
        (i, convert)
        for i, n in enumerate(names)
        if n in by_field
        and (
            convert := column_converter(
                stub, by_field[n].annotation, oids[i], registry, adapters, where=f"column {n!r}"
            )
        )
    ]

    def null_error(values: Sequence[Any]) -> None:
        for i, n in not_null:
            if values[i] is None:
                field = by_field[n]
                msg = (
                    f"{stub}: column {n!r} is NULL but field {target}.{n} is {describe(field.annotation)}; "
                    f"annotate it `{describe(field.annotation)} | None` or make the SQL return a value"
                )
                raise MappingError(msg)

    build, build_many, in_order = _builders(record, names)
    if record.validating:
        build, build_many = _refusals_noted(build, build_many, _refusal_note(stub, record, target, names, source))
        in_order = False
    if not not_null and not converters:
        return Layout(build, build_many, binary=False)
    null_in_row, null_in_rows = _null_checks(tuple(i for i, _ in not_null))
    if converters:
        notes = {
            i: json_note(stub, by_field[names[i]].annotation, oids[i], f"column {names[i]!r}") for i, _ in converters
        }

        def converted(values: Sequence[Any]) -> Any:
            if null_in_row(values):
                null_error(values)
            row = list(values)
            for i, convert in converters:
                if row[i] is not None:
                    try:
                        row[i] = convert(row[i])
                    except Exception as err:
                        if notes[i]:
                            add_note(err, notes[i])
                        raise
            return build(row)

        return each(converted)

    checked = _checked_row(tuple(i for i, _ in not_null), null_error, cls if in_order else None, build)

    def checked_many(rows: list[Any]) -> list[Any]:
        if null_in_rows(rows):
            for row in rows:
                null_error(row)
        return build_many(rows)

    return Layout(checked, checked_many, binary=False)


def _null_checks(indices: tuple[int, ...]) -> tuple[Callable[[Sequence[Any]], bool], Callable[[list[Any]], bool]]:
    """Whether a row, or any of a list of rows, has NULL at one of *indices*: straight-line identity tests,
    several times faster than `None in row` (which compares by equality) or a pass per column."""
    test = " or ".join(f"r[{i}] is None" for i in indices) or "False"
    src = f"def null_in_row(r):\n    return {test}\n\n\ndef null_in_rows(rows):\n    for r in rows:\n"
    src += f"        if {test}:\n            return True\n    return False\n"
    namespace: dict[str, Any] = {}
    define(src, "null_in_row", "NULL check", namespace)
    return namespace["null_in_row"], namespace["null_in_rows"]


def _checked_row(indices: tuple[int, ...], null_error: Callable[[Sequence[Any]], None], cls: Any, build: One) -> One:
    """A row made by ``cls(*row)`` (given *cls*, the columns being its leading fields in order) or ``build(row)``,
    once straight-line tests found no NULL at *indices* (else `null_error` raises): one call per row, no more."""
    test = " or ".join(f"r[{i}] is None" for i in indices)
    made = "build(r)" if cls is None else "cls(*r)"
    src = f"def checked(r):\n    if {test}:\n        null_error(r)\n    return {made}\n"
    return define(src, "checked", "row maker", {"cls": cls, "build": build, "null_error": null_error})  # type: ignore[no-any-return]


def _builders(record: Record, names: list[str]) -> tuple[One, Many, bool]:
    """How to build one row, and a list of rows, of *record* from values in the order of *names*; and whether
    the values are the class's positional arguments as they are (``cls(*values)``)."""
    cls = record.cls
    if cls is dict:
        return (*_pair(lambda values: dict(zip(names, values, strict=True))), False)
    if not record.by_mapping:
        positional = [f.name for f in record.fields if not f.kw_only]
        leading = positional[: len(names)]
        if names == leading:  # the columns are the leading fields, in order: pass the rows as they are
            return (lambda values: cls(*values)), (lambda rows: list(starmap(cls, rows))), True
        if len(names) > 1 and sorted(names) == sorted(leading):  # the same, in another order: reorder in C
            reorder = itemgetter(*(names.index(n) for n in leading))
            many = lambda rows: list(starmap(cls, map(reorder, rows)))  # noqa: E731 - a closure over reorder
            return (lambda values: cls(*reorder(values))), many, False
    by_name = {f.name: f.keyword for f in record.fields}
    keys = [by_name.get(n, n) for n in names]  # the keywords of fields whose alias is not their name
    return (*_pair(lambda values: cls(**dict(zip(keys, values, strict=True)))), False)


#: json, jsonb and arrays of them.
_JSON_OR_ARRAY_OIDS = JSON_OIDS | {199, 3807}


def json_note(stub: str, annotation: Any, oid: int, where: str) -> str:
    """The note for what the classes of *annotation* raise while made from the JSON of a column of type *oid*
    ("" for another type: a composite's classes say it themselves)."""
    if oid not in _JSON_OR_ARRAY_OIDS:
        return ""
    return f"{stub}: while making {describe(bare(annotation)[0])} from the json value of {where}"


def _refusals_noted(build: One, build_many: Many, note: Callable[[Exception], None]) -> tuple[One, Many]:
    """*build* and *build_many* for a class whose constructor validates, each adding *note* to what it raises."""

    def one(values: Sequence[Any]) -> Any:
        try:
            return build(values)
        except Exception as err:
            note(err)
            raise

    def many(rows: list[Any]) -> list[Any]:
        try:
            return build_many(rows)
        except Exception as err:
            note(err)
            raise

    return one, many


def _refusal_note(stub: str, record: Record, target: str, names: list[str], source: str) -> Callable[[Exception], None]:
    """How an error the constructor of *record* raised (pydantic's ValidationError, an attrs validator's error) gets
    a note naming the stub and the columns at fault."""
    columns = {f.keyword: f.name for f in record.fields}

    def note(err: Exception) -> None:
        # pydantic says which fields it refused, by the keywords they were passed with: name their columns.
        pydantic = type(err).__module__.startswith("pydantic")
        locations = [e["loc"] or ("",) for e in err.errors()] if pydantic else []  # type: ignore[attr-defined]
        at_fault = list(dict.fromkeys(columns[loc[0]] for loc in locations if loc[0] in columns))
        said = f"column{'s' if len(at_fault) > 1 else ''} {', '.join(map(repr, at_fault))} of " if at_fault else ""
        add_note(err, f"{stub}: {target} refused {said}{source} (columns {', '.join(names)})")

    return note


def _pair(one: One) -> tuple[One, Many]:
    return one, lambda rows: list(map(one, rows))
