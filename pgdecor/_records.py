"""Row types read once: the fields a dataclass, NamedTuple, TypedDict or plain class is built from (their names,
annotations, defaults, and whether they are passed by keyword), which `_mapping` matches result columns against.
A dataclass field is filled from the column of its name, or from the one its metadata names
(``field(metadata={"column": "http://postgrest.com/foo"})``), for columns no Python name can spell.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from dataclasses import dataclass
from typing import Any

from typing_extensions import is_typeddict

from ._annotations import column_name, is_namedtuple, is_nullable
from ._errors import SignatureError

__all__ = ["Field", "Record", "column_of", "record_of"]


@dataclass(frozen=True)
class Field:
    name: str
    annotation: Any
    nullable: bool
    has_default: bool
    #: Passed by keyword only (dataclass kw_only fields, keyword-only __init__ parameters).
    kw_only: bool
    #: The column (or composite attribute, or JSON key) it is filled from: its name, unless metadata says another.
    column: str = ""

    def __post_init__(self) -> None:
        if not self.column:
            object.__setattr__(self, "column", self.name)


@dataclass(frozen=True)
class Record:
    """How to build one row type from named values."""

    cls: type
    fields: tuple[Field, ...]
    #: Built from a dict of all columns (TypedDict, or a class taking **kwargs).
    by_mapping: bool
    extra_allowed: bool


_RECORDS: dict[type, Record] = {}


def record_of(cls: type, hints: dict[str, Any] | None = None) -> Record:
    """Read the fields a record class is built from; *hints* are its resolved annotations (when not given,
    they are read once per class)."""
    if hints is None:
        record = _RECORDS.get(cls)
        if record is None:
            record = _RECORDS[cls] = _read_record(cls, None)
        return record
    return _read_record(cls, hints)


def _read_record(cls: type, hints: dict[str, Any] | None) -> Record:
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls, include_extras=True) if hints is None else hints
        fields = tuple(
            _field(
                f.name,
                hints.get(f.name, Any),
                has_default=f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
                kw_only=bool(getattr(f, "kw_only", False)),
                column=column_of(cls, f),
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


def _field(name: str, annotation: Any, *, has_default: bool, kw_only: bool, column: str = "") -> Field:
    return Field(name, annotation, is_nullable(annotation), has_default, kw_only, column)


def column_of(cls: type, field: dataclasses.Field[Any]) -> str:
    """The column a dataclass field is filled from: ``metadata["column"]``, else its name."""
    column = column_name(field)
    if not isinstance(column, str) or not column:
        msg = (
            f"{cls.__module__}.{cls.__qualname__}.{field.name}: metadata column={column!r} does not name a column; "
            f'give the column\'s name as a non-empty str (`field(metadata={{"column": "name"}})`)'
        )
        raise SignatureError(msg)
    return column
