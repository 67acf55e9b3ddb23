"""JSON documents into the annotated types: what psycopg decodes from json and jsonb (dicts, lists, scalars)
becomes the dataclass, TypedDict, NamedTuple, pydantic model, attrs class, msgspec Struct, enum, date, time,
`Decimal` or `UUID` the annotation names, or a list or dict of them, keys mapping onto fields by name. Each
annotation's converter is built once, as row mappers are; the reverse way is `json_dump`'s.
"""

from __future__ import annotations

import datetime as dt
import enum
import typing
import uuid
from decimal import Decimal
from typing import Any

from typing_extensions import is_typeddict

from pgdecor._annotations import bare, is_structured

from .convert import Convert, enum_loader
from .json_dump import MAX_JSON_DEPTH
from .records import record_of


def needs_json_conversion(tp: Any) -> bool:
    """Whether a JSON value must be converted to be of annotation *tp* (psycopg gives dicts, lists, scalars)."""
    tp, _ = bare(tp)
    origin = typing.get_origin(tp)
    if origin in (list, dict):
        return any(needs_json_conversion(a) for a in typing.get_args(tp))
    if not isinstance(tp, type) or is_typeddict(tp):
        return False
    return is_structured(tp) or issubclass(tp, enum.Enum) or tp in (dt.date, dt.datetime, dt.time, Decimal, uuid.UUID)


def from_json(tp: Any) -> Convert:
    """How a decoded JSON value becomes a value of annotation *tp*, recursively (keys map onto fields by name):
    built once per annotation, as row mappers are, so that a value costs its conversions and nothing else."""
    found = _from_json.get(tp)
    if found is None:
        found = _from_json[tp] = _json_converter(tp)
    return found


#: Annotation → its JSON converter (`from_json`).
_from_json: dict[Any, Convert] = {}


def _identity(value: Any) -> Any:
    return value


def _json_converter(tp: Any) -> Convert:
    inner, _ = bare(tp)
    origin = typing.get_origin(inner)
    if origin is list:
        (item_type,) = typing.get_args(inner) or (Any,)
        item = from_json(item_type)
        if item is _identity:
            return _identity
        return lambda v: None if v is None else [item(x) for x in v]
    if origin is dict:
        _, value_type = typing.get_args(inner) or (str, Any)
        convert = from_json(value_type)
        if convert is _identity:
            return _identity
        return lambda v: None if v is None else {k: convert(x) for k, x in v.items()}
    if not isinstance(inner, type) or is_typeddict(inner):
        return _identity
    if issubclass(inner, enum.Enum):
        load = enum_loader(inner)
        return lambda v: None if v is None else load(v)
    if is_structured(inner):
        return _record_from_json(inner)
    if inner in (dt.date, dt.datetime, dt.time):
        parse = inner.fromisoformat
        return lambda v: parse(v) if isinstance(v, str) else v
    if inner is Decimal:
        return lambda v: None if v is None else Decimal(str(v))
    if inner is uuid.UUID:
        return lambda v: None if v is None else uuid.UUID(v)
    return _identity


def _record_from_json(cls: type) -> Convert:
    """A dataclass, NamedTuple, pydantic model, attrs class or msgspec Struct from a JSON object (its keys the
    fields' names): one call of the class per value. Its fields' converters are made at the first value, so that a
    class may refer to itself (or to a class defined after it)."""
    made: list[tuple[list[tuple[str, str]], list[tuple[str, str, Convert]]]] = []

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not made:
            made.append(_fields_from_json(cls))
        plain, converted = made[0]
        kwargs = {keyword: value[name] for name, keyword in plain if name in value}
        for name, keyword, field_convert in converted:
            if name in value:
                kwargs[keyword] = field_convert(value[name])
        return cls(**kwargs)

    return convert


def _fields_from_json(cls: type) -> tuple[list[tuple[str, str]], list[tuple[str, str, Convert]]]:
    """The fields of *cls* (their names, and the keywords its __init__ takes them by) taken as they are, and those
    converted (with their converters)."""
    plain: list[tuple[str, str]] = []
    converted: list[tuple[str, str, Convert]] = []
    for field in record_of(cls).fields:
        convert = from_json(field.annotation)
        if convert is _identity:
            plain.append((field.name, field.keyword))
        else:
            converted.append((field.name, field.keyword, convert))
    return plain, converted


def too_deep(stub: str) -> Exception:
    """The error for a result Python could not read for its depth (a RecursionError while loading rows)."""
    from pgdecor._errors import MappingError  # noqa: PLC0415 - see `convert.enum_loader`

    msg = (
        f"{stub}: a value in the result is nested too deeply for Python to read (JSON nested beyond its recursion "
        f"limit; pgdecor guarantees {MAX_JSON_DEPTH} levels), or the row type's constructor recursed without end"
    )
    return MappingError(msg)
