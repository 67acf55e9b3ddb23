"""Row makers: a result's columns → the stub's row type, matched by column name.

A row factory is built once per stub. psycopg calls it once per result set; it compares the result's column
names with the row type's fields (once per distinct column list) and returns a `RowMaker` specialised for that
layout, so the per-row work is a tuple reorder at most and one constructor call.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import psycopg
from psycopg import BaseConnection, abc, pq
from psycopg.adapt import AdaptersMap
from psycopg.rows import RowMaker
from psycopg.types.composite import CompositeInfo, register_composite
from typing_extensions import is_typeddict

from ._annotations import describe, is_namedtuple, is_nullable, is_record_type, split_optional, strip_annotated
from ._errors import MappingError

_TEXT = pq.Format.TEXT


@dataclass(frozen=True)
class Field:
    name: str
    annotation: Any
    nullable: bool
    has_default: bool
    #: Passed by keyword only (dataclass kw_only fields, keyword-only __init__ parameters).
    kw_only: bool
    #: Set when the field is itself a record, loaded from a composite column.
    nested: type | None


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
    inner, _ = split_optional(strip_annotated(annotation))
    nested = inner if is_record_type(inner) and not is_typeddict(inner) else None
    return Field(name, annotation, is_nullable(annotation), has_default, kw_only, nested)


class Composites:
    """Loaders for the composite types of one database, fetched on first need and kept for the process."""

    def __init__(self) -> None:
        self.adapters = AdaptersMap(psycopg.adapters)
        self.infos: dict[int, CompositeInfo] = {}
        self._loaders: dict[int, abc.Loader] = {}

    def load(self, oid: int, text: str) -> tuple[Any, ...]:
        """Parse a composite value psycopg handed over as text (its type was not registered)."""
        loader = self._loaders.get(oid)
        if loader is None:
            loader_cls = self.adapters.get_loader(oid, _TEXT)
            assert loader_cls is not None
            loader = self._loaders[oid] = loader_cls(oid, self.adapters)
        value: tuple[Any, ...] = loader.load(text.encode())
        return value

    def add(self, info: CompositeInfo) -> None:
        register_composite(info, self.adapters, make_object=lambda values, _info: tuple(values))
        self.infos[info.oid] = info


_composites: dict[tuple[str, str, str], Composites] = {}

#: Describes the composite type of a given oid; the row feeds `composite_info`.
COMPOSITE_QUERY = """
SELECT t.typname, t.typarray, t.oid::regtype::text,
       array_agg(a.attname::text ORDER BY a.attnum), array_agg(a.atttypid::int8 ORDER BY a.attnum)
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
WHERE t.oid = %s
GROUP BY t.oid
"""


def composite_info(oid: int, row: tuple[Any, ...] | None) -> CompositeInfo:
    if row is None:  # pragma: no cover - the oid came from the server a moment ago
        msg = f"the composite type with oid {oid} was dropped while its rows were being read"
        raise MappingError(msg)
    name, array_oid, regtype, names, types = row
    return CompositeInfo(name, oid, array_oid, regtype=regtype, field_names=names, field_types=types)


def composites_for(conn: BaseConnection[Any]) -> Composites:
    """The composite loaders of the database *conn* is connected to."""
    info = conn.info
    key = (info.host, str(info.port), info.dbname)
    found = _composites.get(key)
    if found is None:
        found = _composites[key] = Composites()
    return found


def missing_composites(stub: RowFactory, res: pq.abc.PGresult, composites: Composites) -> list[int]:
    """Oids of composite columns (and their nested composites) the cache does not know yet."""
    missing: list[int] = []
    for oid, record in stub.nested_columns(res):
        if oid in composites.infos:
            missing.extend(_missing_inside(record, composites.infos[oid], composites))
        else:
            missing.append(oid)
    return missing


def _missing_inside(record: Record, info: CompositeInfo, composites: Composites) -> list[int]:
    missing: list[int] = []
    by_name = dict(zip(info.field_names, info.field_types, strict=True))
    for f in record.fields:
        oid = by_name.get(f.name)
        if f.nested is not None and oid is not None:
            if oid in composites.infos:
                missing.extend(_missing_inside(record_of(f.nested), composites.infos[oid], composites))
            else:
                missing.append(oid)
    return missing


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
        self.has_nested = self.record is not None and any(f.nested is not None for f in self.record.fields)

    def nested_columns(self, res: pq.abc.PGresult) -> list[tuple[int, Record]]:
        assert self.record is not None
        names = [_name(res, i) for i in range(res.nfields)]
        return [
            (res.ftype(names.index(f.name)), record_of(f.nested))
            for f in self.record.fields
            if f.nested is not None and f.name in names
        ]

    def __call__(self, cursor: Any) -> RowMaker[Any]:
        res = cursor.pgresult
        if res is None or not res.nfields:
            return _no_rows
        composites = composites_for(cursor.connection) if self.has_nested else None
        key = (composites, *(res.fname(i) for i in range(res.nfields)))
        maker = self._makers.get(key)
        if maker is None:
            names = [_name(res, i) for i in range(res.nfields)]
            oids = [res.ftype(i) for i in range(res.nfields)]
            maker = self._makers[key] = self._make(names, oids, composites)
        return maker

    def _make(self, names: list[str], oids: list[int], composites: Composites | None) -> RowMaker[Any]:
        if self.scalar:
            return self._scalar_maker(names)
        if self.record is None:
            return lambda values: dict(zip(names, values, strict=True))
        return _record_maker(self, self.record, names, oids, composites, where=f"{self.sql_object} returned")

    def _scalar_maker(self, names: list[str]) -> RowMaker[Any]:
        if len(names) != 1:
            msg = (
                f"{self.stub}: {self.sql_object} returned {len(names)} columns ({', '.join(names)}) but the stub "
                f"returns a single {describe(self.row_type)}; select one column, or return a dataclass"
            )
            raise MappingError(msg)
        if self.nullable:
            return itemgetter(0)
        stub, column = self.stub, names[0]

        def scalar_not_null(values: Sequence[Any]) -> Any:
            value = values[0]
            if value is None:
                msg = (
                    f"{stub}: column {column!r} is NULL but the stub returns {describe(self.row_type)}; "
                    f"annotate it `{describe(self.row_type)} | None` or make the SQL return a value"
                )
                raise MappingError(msg)
            return value

        return scalar_not_null


def _name(res: pq.abc.PGresult, i: int) -> str:
    return (res.fname(i) or b"").decode()


def _no_rows(_values: Sequence[Any]) -> Any:  # pragma: no cover - psycopg never makes rows without a result
    raise AssertionError


def _record_maker(
    factory: RowFactory,
    record: Record,
    names: list[str],
    oids: list[int],
    composites: Composites | None,
    *,
    where: str,
) -> RowMaker[Any]:
    """Specialise a maker for one column layout; raise MappingError if the columns do not fit the fields."""
    stub, cls = factory.stub, record.cls
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
    nested = [
        (i, _nested_converter(factory, nested_cls, oids[i], composites, f"{stub}: column {n!r}"))
        for i, n in enumerate(names)
        if n in by_field and (nested_cls := by_field[n].nested) is not None and composites is not None
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
    if not not_null and not nested:
        return build
    if not nested:

        def checked(values: Sequence[Any]) -> Any:
            if None in values:
                null_error(values)
            return build(values)

        return checked

    def with_nested(values: Sequence[Any]) -> Any:
        if None in values:
            null_error(values)
        row = list(values)
        for i, convert in nested:
            if row[i] is not None:
                row[i] = convert(row[i])
        return build(row)

    return with_nested


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


def _nested_converter(
    factory: RowFactory, nested: type, oid: int, composites: Composites, where: str
) -> Callable[[Any], Any]:
    """Convert a composite column's value (text, or a tuple if the connection loads it) into *nested*."""
    record = record_of(nested)
    # Built at the first value: the composite's description is fetched after the row factory runs.
    maker: list[RowMaker[Any]] = []

    def convert(value: Any) -> Any:
        if isinstance(value, nested):
            return value
        if not maker:
            info = composites.infos[oid]
            names, oids = list(info.field_names), list(info.field_types)
            maker.append(
                _record_maker(factory, record, names, oids, composites, where=f"{where} (type {info.name}) has")
            )
        if isinstance(value, str):
            value = composites.load(oid, value)
        return maker[0](value)

    return convert
