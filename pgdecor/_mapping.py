"""Row makers: a result's columns → the stub's row type, matched by column name.

A row factory is built once per stub. psycopg calls it once per result set; it compares the result's column
names with the row type's fields (once per distinct column list) and returns a `RowMaker` specialised for that
layout, so the per-row work is a tuple reorder at most and one constructor call.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import RowMaker
from typing_extensions import is_typeddict

from ._annotations import describe, is_namedtuple, is_nullable, is_record_type, split_optional, strip_annotated
from ._convert import JSON_OIDS, Convert, enum_loader, from_json, list_of, needs_json_conversion
from ._errors import MappingError
from ._registry import TypeRegistry, registry_for, server_key


@dataclass(frozen=True)
class Field:
    name: str
    annotation: Any
    nullable: bool
    has_default: bool
    #: Passed by keyword only (dataclass kw_only fields, keyword-only __init__ parameters).
    kw_only: bool


@dataclass(frozen=True)
class Record:
    """How to build one row type from named values."""

    cls: type
    fields: tuple[Field, ...]
    #: Built from a dict of all columns (TypedDict, or a class taking **kwargs).
    by_mapping: bool
    extra_allowed: bool


def record_of(cls: type, hints: dict[str, Any] | None = None) -> Record:
    """Read the fields a record class is built from; *hints* are its resolved annotations."""
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls, include_extras=True) if hints is None else hints
        fields = tuple(
            _field(
                f.name,
                hints.get(f.name, Any),
                has_default=f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
                kw_only=bool(getattr(f, "kw_only", False)),
            )
            for f in dataclasses.fields(cls)
            if f.init
        )
        return Record(cls, fields, by_mapping=False, extra_allowed=False)
    if is_namedtuple(cls):
        hints = typing.get_type_hints(cls, include_extras=True) if hints is None else hints
        defaults = getattr(cls, "_field_defaults", {})
        fields = tuple(
            _field(n, hints.get(n, Any), has_default=n in defaults, kw_only=False)
            for n in cls._fields  # type: ignore[attr-defined]
        )
        return Record(cls, fields, by_mapping=False, extra_allowed=False)
    if is_typeddict(cls):
        hints = typing.get_type_hints(cls, include_extras=True) if hints is None else hints
        required = getattr(cls, "__required_keys__", frozenset(hints))
        fields = tuple(_field(n, t, has_default=n not in required, kw_only=True) for n, t in hints.items())
        return Record(dict, fields, by_mapping=True, extra_allowed=False)
    init = cls.__init__  # type: ignore[misc]
    hints = typing.get_type_hints(init, include_extras=True) if hints is None else hints
    params = list(inspect.signature(cls).parameters.values())
    fields = tuple(
        _field(p.name, hints.get(p.name, Any), has_default=p.default is not p.empty, kw_only=p.kind is p.KEYWORD_ONLY)
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    extra = any(p.kind is p.VAR_KEYWORD for p in params)
    return Record(cls, fields, by_mapping=extra, extra_allowed=extra)


def _field(name: str, annotation: Any, *, has_default: bool, kw_only: bool) -> Field:
    return Field(name, annotation, is_nullable(annotation), has_default, kw_only)


def needs_registry(annotation: Any) -> bool:
    """Whether values of *annotation* may come in a type psycopg needs describing to load (composite, array of
    an extension or enum type, hstore): such columns are described through the catalog at first sight."""
    tp, _ = split_optional(strip_annotated(annotation))
    origin = typing.get_origin(tp)
    if origin in (list, dict) or tp is dict:
        return True
    return is_record_type(tp) and not is_typeddict(tp)


class RowFactory:
    """A psycopg row factory for one stub: builds its row type from each row."""

    def __init__(self, stub: str, sql_object: str, row_type: Any, *, scalar: bool, nullable: bool) -> None:
        self.stub = stub
        self.sql_object = sql_object
        self.row_type = row_type
        self.scalar = scalar
        self.nullable = nullable
        self.record = None if scalar or row_type is dict else record_of(row_type)
        self._makers: dict[tuple[Any, ...], RowMaker[Any]] = {}
        annotations = [row_type] if scalar else [f.annotation for f in self.record.fields] if self.record else []
        self.uses_registry = any(needs_registry(a) for a in annotations)

    def missing_types(self, res: pq.abc.PGresult, registry: TypeRegistry) -> list[int]:
        """Oids of this result's columns that must be described before its rows can be made."""
        return registry.missing([oid for oid, annotation in self._columns(res) if needs_registry(annotation)])

    def _columns(self, res: pq.abc.PGresult) -> list[tuple[int, Any]]:
        if self.scalar:
            return [(res.ftype(0), self.row_type)] if res.nfields else []
        assert self.record is not None
        by_name = {f.name: f.annotation for f in self.record.fields}
        return [(res.ftype(i), by_name.get(_name(res, i), Any)) for i in range(res.nfields)]

    def __call__(self, cursor: Any) -> RowMaker[Any]:
        res = cursor.pgresult
        if res is None or not res.nfields:
            return _no_rows
        registry = registry_for(server_key(cursor.connection)) if self.uses_registry else None
        if registry is not None and self.missing_types(res, registry):
            # The runner describes the types, then sets the row factory again: see Plan.run.
            return _types_pending
        key = (registry, *(res.fname(i) for i in range(res.nfields)), *(res.ftype(i) for i in range(res.nfields)))
        maker = self._makers.get(key)
        if maker is None:
            names = [_name(res, i) for i in range(res.nfields)]
            oids = [res.ftype(i) for i in range(res.nfields)]
            maker = self._makers[key] = self._make(names, oids, registry)
        return maker

    def _make(self, names: list[str], oids: list[int], registry: TypeRegistry | None) -> RowMaker[Any]:
        if self.scalar:
            return self._scalar_maker(names, oids, registry)
        if self.record is None:
            return lambda values: dict(zip(names, values, strict=True))
        return _record_maker(self.stub, self.record, names, oids, registry, where=f"{self.sql_object} returned")

    def _scalar_maker(self, names: list[str], oids: list[int], registry: TypeRegistry | None) -> RowMaker[Any]:
        if len(names) != 1:
            msg = (
                f"{self.stub}: {self.sql_object} returned {len(names)} columns ({', '.join(names)}) but the stub "
                f"returns a single {describe(self.row_type)}; select one column, or return a dataclass"
            )
            raise MappingError(msg)
        convert = column_converter(self.stub, self.row_type, oids[0], registry, where=f"column {names[0]!r}")
        stub, column, nullable, row_type = self.stub, names[0], self.nullable, self.row_type

        def scalar(values: Sequence[Any]) -> Any:
            value = values[0]
            if value is None:
                if nullable:
                    return None
                msg = (
                    f"{stub}: column {column!r} is NULL but the stub returns {describe(row_type)}; "
                    f"annotate it `{describe(row_type)} | None` or make the SQL return a value"
                )
                raise MappingError(msg)
            return value if convert is None else convert(value)

        if convert is None and nullable:
            return itemgetter(0)
        return scalar


def _name(res: pq.abc.PGresult, i: int) -> str:
    return (res.fname(i) or b"").decode()


def _no_rows(_values: Sequence[Any]) -> Any:  # pragma: no cover - psycopg never makes rows without a result
    raise AssertionError


def _types_pending(_values: Sequence[Any]) -> Any:  # pragma: no cover - replaced before any row is made
    raise AssertionError


def column_converter(
    stub: str, annotation: Any, oid: int, registry: TypeRegistry | None, *, where: str
) -> Convert | None:
    """How a non-NULL value of a column of type *oid* becomes a value of *annotation*; None if it already is."""
    tp, _ = split_optional(strip_annotated(annotation))
    if tp is Any or tp is object:
        return None
    if oid in JSON_OIDS:
        return (lambda v: from_json(tp, v)) if needs_json_conversion(tp) else None
    raw: Convert | None = None
    if registry is not None and oid in registry.parsed and tp is not str:
        load = registry.load
        raw = lambda v: load(oid, v) if isinstance(v, str) else v  # noqa: E731 - a closure over oid
    shape = _shaper(stub, tp, oid, registry, where)
    if raw is None or shape is None:
        return raw or shape
    return lambda v: shape(raw(v))


def _shaper(stub: str, tp: Any, oid: int, registry: TypeRegistry | None, where: str) -> Convert | None:
    """How a loaded value (str for an enum, tuple for a composite, list for an array) becomes a *tp*."""
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return enum_loader(tp)
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp) or (Any,)
        element = registry.element(oid) if registry is not None else _builtin_element(oid)
        if element is None:
            return None
        convert = column_converter(stub, item, element, registry, where=where)
        return None if convert is None else list_of(convert)
    if is_record_type(tp) and not is_typeddict(tp):
        info = registry.composites.get(oid) if registry is not None else None
        if info is None:
            msg = (
                f"{stub}: {where} cannot fill {describe(tp)}: it is not a composite or json value (type oid {oid}); "
                f"select a row-typed column, or annotate the field with the column's type"
            )
            raise MappingError(msg)
        names, oids = list(info.field_names), list(info.field_types)
        record = record_of(tp)
        return _record_maker(stub, record, names, oids, registry, where=f"{where} (type {info.name}) has")
    return None


def _builtin_element(oid: int) -> int | None:
    info = psycopg.adapters.types.get(oid)
    return info.oid if info is not None and info.array_oid == oid else None


def _record_maker(
    stub: str,
    record: Record,
    names: list[str],
    oids: list[int],
    registry: TypeRegistry | None,
    *,
    where: str,
) -> RowMaker[Any]:
    """Specialise a maker for one column layout; raise MappingError if the columns do not fit the fields."""
    cls = record.cls
    field_names = [f.name for f in record.fields]
    target = describe(cls) if not record.by_mapping or cls is not dict else "the TypedDict"
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        msg = f"{stub}: {where} the column {dupes[0]!r} twice; alias one of them (`AS other_name`)"
        raise MappingError(msg)
    extra = [n for n in names if n not in field_names]
    if extra and not record.extra_allowed:
        msg = (
            f"{stub}: {where} column {extra[0]!r} which {target} has no field for; "
            f"add a field {extra[0]!r} or stop selecting it"
        )
        raise MappingError(msg)
    missing = [f.name for f in record.fields if f.name not in names and not f.has_default]
    if missing:
        msg = (
            f"{stub}: {where} no column {missing[0]!r} for field {target}.{missing[0]}; "
            f"select it (columns were: {', '.join(names)}) or give the field a default"
        )
        raise MappingError(msg)

    by_field = {f.name: f for f in record.fields}
    not_null = [(i, n) for i, n in enumerate(names) if n in by_field and not by_field[n].nullable]
    converters = [
        (i, convert)
        for i, n in enumerate(names)
        if n in by_field
        and (convert := column_converter(stub, by_field[n].annotation, oids[i], registry, where=f"column {n!r}"))
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

    build = _builder(record, names)
    if not not_null and not converters:
        return build
    if not converters:

        def checked(values: Sequence[Any]) -> Any:
            if None in values:
                null_error(values)
            return build(values)

        return checked

    def converted(values: Sequence[Any]) -> Any:
        if None in values:
            null_error(values)
        row = list(values)
        for i, convert in converters:
            if row[i] is not None:
                row[i] = convert(row[i])
        return build(row)

    return converted


def _builder(record: Record, names: list[str]) -> Callable[[Sequence[Any]], Any]:
    cls = record.cls
    if cls is dict:
        return lambda values: dict(zip(names, values, strict=True))
    if record.by_mapping:
        return lambda values: cls(**dict(zip(names, values, strict=True)))
    positional = [f.name for f in record.fields if not f.kw_only]
    if names == positional[: len(names)]:  # the columns are the leading fields, in order: pass them positionally
        return lambda values: cls(*values)
    return lambda values: cls(**dict(zip(names, values, strict=True)))
