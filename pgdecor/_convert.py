"""Value conversions psycopg does not do by itself: enums, JSON into typed objects, hstore, composites as JSON.

Loading: an enum label becomes the annotated `Enum` member; a json/jsonb value becomes the annotated dataclass,
TypedDict or list of them. Dumping: an `Enum` is sent as its label, dicts/dataclasses bound for json as `Jsonb`,
a dict bound for hstore as hstore text, and a dataclass bound for a composite argument as JSON that the server
turns into the composite by attribute name (``jsonb_populate_record``), so field order never matters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import ipaddress
import math
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from psycopg.types.hstore import BaseHstoreDumper
from psycopg.types.json import Jsonb
from typing_extensions import is_typeddict

from ._annotations import bare, is_namedtuple

Convert = Callable[[Any], Any]

JSON_OIDS = frozenset({114, 3802})


# -- loading ----------------------------------------------------------------------------------------------------


def enum_loader(cls: type[enum.Enum]) -> Convert:
    """Label → member, by value (string-valued enums) or else by name."""
    by_label = {enum_label(m): m for m in cls}

    def load(label: Any) -> Any:
        try:
            return by_label[label]
        except KeyError:
            from ._errors import MappingError  # noqa: PLC0415 - errors import nothing from here; keep it that way

            msg = f"the label {label!r} is not a member of {cls.__qualname__} (members: {', '.join(by_label)})"
            raise MappingError(msg) from None

    return load


def needs_json_conversion(tp: Any) -> bool:
    """Whether a JSON value must be converted to be of annotation *tp* (psycopg gives dicts, lists, scalars)."""
    tp, _ = bare(tp)
    origin = typing.get_origin(tp)
    if origin in (list, dict):
        return any(needs_json_conversion(a) for a in typing.get_args(tp))
    if not isinstance(tp, type) or is_typeddict(tp):
        return False
    return (
        dataclasses.is_dataclass(tp)
        or is_namedtuple(tp)
        or issubclass(tp, enum.Enum)
        or tp in (dt.date, dt.datetime, dt.time, Decimal, uuid.UUID)
    )


def from_json(tp: Any, value: Any) -> Any:
    """A decoded JSON value → a value of annotation *tp*, recursively; keys map onto fields by name."""
    if value is None:
        return None
    tp, _ = bare(tp)
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return [from_json(item, v) for v in value]
    if origin is dict:
        _, item = typing.get_args(tp) or (str, Any)
        return {k: from_json(item, v) for k, v in value.items()}
    if not isinstance(tp, type) or is_typeddict(tp):
        return value
    if issubclass(tp, enum.Enum):
        return enum_loader(tp)(value)
    if dataclasses.is_dataclass(tp) or is_namedtuple(tp):
        hints = typing.get_type_hints(tp)
        names = [f.name for f in dataclasses.fields(tp)] if dataclasses.is_dataclass(tp) else list(tp._fields)  # type: ignore[attr-defined]
        return tp(**{n: from_json(hints.get(n, Any), value[n]) for n in names if n in value})
    if tp in (dt.date, dt.datetime, dt.time) and isinstance(value, str):
        return tp.fromisoformat(value)
    if tp is Decimal:
        return Decimal(str(value))
    if tp is uuid.UUID:
        return uuid.UUID(value)
    return value


# -- dumping ----------------------------------------------------------------------------------------------------


def enum_label(member: enum.Enum) -> str:
    return member.value if isinstance(member.value, str) else member.name


#: The deepest nesting of lists and objects (dataclasses, dicts) a JSON argument may have; a deeper one raises
#: `ArgumentError`, and a result nested deeper than Python can parse raises `MappingError`.
MAX_JSON_DEPTH = 500

_TEXT_FORMS = (Decimal, uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network,
               ipaddress.IPv6Network)  # fmt: skip


#: Floats from here up are written with an exponent (``1e+16``), which jsonb keeps as an integer.
_EXPONENT_FLOATS = 1e16


class NotJsonError(ValueError):
    """A value that JSON cannot represent exactly (the message says what and where); the caller names the
    parameter."""


def to_json(value: Any, depth: int = 0, where: str = "") -> Any:
    """A Python value → something `json.dumps` turns into JSON that PostgreSQL accepts and that reads back as the
    same value: JSON's own types (strings with no NUL and no lone surrogate, finite numbers, lists, objects with
    string keys), dataclasses and NamedTuples as objects of their fields, enums as their labels, and dates,
    times, decimals, UUIDs and network addresses as their text forms (read back as themselves where the annotation
    says so). Anything else raises `NotJsonError` rather than being stored as something else."""
    if value is None or value is True or value is False:
        return value
    kind = type(value)
    if kind is str:
        return _json_text(value, where)
    if kind is int:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise NotJsonError(f"has {value!r}{_at(where)}, which JSON (and jsonb) cannot represent")
        if value.is_integer() and abs(value) >= _EXPONENT_FLOATS:
            msg = (
                f"has the float {value!r}{_at(where)}, which jsonb would give back as the integer "
                f"{Decimal(repr(value)):f}, another number; send an int, or a Decimal"
            )
            raise NotJsonError(msg)
        return value
    if isinstance(value, enum.Enum):
        return enum_label(value)
    if depth >= MAX_JSON_DEPTH:
        msg = f"is nested deeper than {MAX_JSON_DEPTH} levels, more than pgdecor sends as JSON"
        raise NotJsonError(msg)
    depth += 1
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                msg = (
                    f"has the key {k!r} ({type(k).__qualname__}){_at(where)}: JSON keys are strings, so it would "
                    f"come back as {str(k)!r} (or collide with that key); use string keys"
                )
                raise NotJsonError(msg)
            out[_json_text(k, where)] = to_json(v, depth, f"{where}[{k!r}]")
        return out
    # Loops, not comprehensions: one frame per level (before Python 3.12 a comprehension is a frame of its own),
    # so that MAX_JSON_DEPTH levels fit in Python's recursion limit.
    if isinstance(value, list):
        items = []
        for i, v in enumerate(value):
            items.append(to_json(v, depth, f"{where}[{i}]"))
        return items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {}
        for f in dataclasses.fields(value):
            fields[f.name] = to_json(getattr(value, f.name), depth, f"{where}.{f.name}")
        return fields
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        fields = {}
        for k, v in value._asdict().items():
            fields[k] = to_json(v, depth, f"{where}.{k}")
        return fields
    for plain in (str, int, float):  # a subclass of one (not an Enum): its plain value
        if isinstance(value, plain):
            return to_json(plain(value), depth, where)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"{value.total_seconds()} seconds"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, _TEXT_FORMS):
        return str(value)
    fixes: dict[type, str] = {tuple: "a list", set: "a sorted list", frozenset: "a sorted list"}
    fix = fixes.get(kind, "a JSON type")
    msg = (
        f"has a value of type {kind.__qualname__}{_at(where)}, which JSON cannot represent"
        f"{' as itself: it would come back as a list' if kind is tuple else ''}; pass {fix} instead"
    )
    raise NotJsonError(msg)


def too_deep(stub: str) -> Exception:
    """The error for a result Python could not read for its depth (a RecursionError while loading rows)."""
    from ._errors import MappingError  # noqa: PLC0415 - see enum_loader

    msg = (
        f"{stub}: a value in the result is nested too deeply for Python to read (JSON nested beyond its recursion "
        f"limit; pgdecor guarantees {MAX_JSON_DEPTH} levels), or the row type's constructor recursed without end"
    )
    return MappingError(msg)


def _json_text(value: str, where: str) -> str:
    if "\x00" in value:
        msg = f"has a string with a NUL character{_at(where)}, which PostgreSQL's jsonb cannot store"
        raise NotJsonError(msg)
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            msg = f"has a string with a lone surrogate{_at(where)}, which UTF-8 cannot encode"
            raise NotJsonError(msg) from None
    return value


def _at(where: str) -> str:
    return f" at {where}" if where else ""


def jsonb(value: Any) -> Any:
    return None if value is None else Jsonb(to_json(value))


def enum_param(value: Any) -> Any:
    return enum_label(value) if isinstance(value, enum.Enum) else value


_hstore_dumper = BaseHstoreDumper(dict)


def hstore_param(value: Any) -> Any:
    if value is None:
        return None
    dumped = _hstore_dumper.dump(value)
    assert dumped is not None
    return bytes(dumped).decode()


def list_of(convert: Convert) -> Convert:
    """Apply *convert* to each non-NULL item of a list."""
    return lambda value: None if value is None else [None if v is None else convert(v) for v in value]


def is_json_param(tp: Any) -> bool:
    """Annotations whose values go to the server as jsonb when nothing else is declared (``@query``)."""
    tp, _ = bare(tp)
    origin = typing.get_origin(tp) or tp
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return is_json_param(item)
    return origin is dict or is_typeddict(tp) or (isinstance(tp, type) and dataclasses.is_dataclass(tp))


def is_enum(tp: Any) -> bool:
    tp, _ = bare(tp)
    return isinstance(tp, type) and issubclass(tp, enum.Enum)
