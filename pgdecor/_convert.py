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

from ._annotations import bare, column_name, is_namedtuple

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
    if dataclasses.is_dataclass(inner) or is_namedtuple(inner):
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
    """A dataclass or NamedTuple from a JSON object: one call of the class per value. Its fields' converters are
    made at the first value, so that a class may refer to itself (or to a class defined after it)."""
    made: list[tuple[list[tuple[str, Any]], list[tuple[str, Any, Convert]]]] = []

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not made:
            made.append(_fields_from_json(cls))
        plain, converted = made[0]
        kwargs = {name: value[key] for name, key in plain if key in value}
        for name, key, field_convert in converted:
            if key in value:
                kwargs[name] = field_convert(value[key])
        return cls(**kwargs)

    return convert


def _fields_from_json(cls: type) -> tuple[list[tuple[str, Any]], list[tuple[str, Any, Convert]]]:
    """The fields of *cls* (each with its key in the object) taken as they are, and those converted (with their
    converters)."""
    hints = typing.get_type_hints(cls)
    if dataclasses.is_dataclass(cls):
        names = [(f.name, column_name(f)) for f in dataclasses.fields(cls)]
    else:
        names = [(name, name) for name in cls._fields]  # type: ignore[attr-defined]
    plain: list[tuple[str, Any]] = []
    converted: list[tuple[str, Any, Convert]] = []
    for name, key in names:
        convert = from_json(hints.get(name, Any))
        if convert is _identity:
            plain.append((name, key))
        else:
            converted.append((name, key, convert))
    return plain, converted


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
        for f in dataclasses.fields(value):  # keyed by column: a composite's attribute, filled by its name
            fields[column_name(f)] = to_json(getattr(value, f.name), depth, f"{where}.{f.name}")
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
    problem = text_problem(value, "PostgreSQL's jsonb", where)
    if problem is not None:
        raise NotJsonError(f"has a string with {problem}")
    return value


def text_problem(value: str, store: str, where: str = "") -> str | None:
    """What keeps *store* from holding the string *value* (a NUL character, or a lone surrogate UTF-8 cannot
    encode), said with where it is; None when nothing does."""
    if "\x00" in value:
        return f"a NUL character{_at(where)}, which {store} cannot store"
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return f"a lone surrogate{_at(where)}, which UTF-8 cannot encode"
    return None


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
