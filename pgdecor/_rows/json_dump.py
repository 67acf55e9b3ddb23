"""Python values as JSON that PostgreSQL accepts and that reads back as the same value (`to_json`), for json and
jsonb arguments, composites sent as JSON (``jsonb_populate_record``), COPY rows and notification payloads: JSON's
own types, dataclasses, NamedTuples and the model libraries' classes as objects of their fields, enums as their
labels, and the values JSON has no type for as their text only where something reads the text back as the value.
What JSON cannot hold exactly is refused (`NotJsonError`), as is a string PostgreSQL cannot store (`text_problem`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import ipaddress
import math
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb
from typing_extensions import is_typeddict

from pgdecor._annotations import bare, column_name, describe, model_library

from .convert import Convert, enum_label
from .records import record_of

#: The deepest nesting of lists and objects (dataclasses, dicts) a JSON argument may have; a deeper one raises
#: `ArgumentError`, and a result nested deeper than Python can parse raises `MappingError`.
MAX_JSON_DEPTH = 500

#: Values JSON has no type for, sent as their text (bytea's hex form for bytes, an interval's for a timedelta):
#: each class is the family of its instances and subclasses' (datetime before date, which it subclasses).
_TEXT_FAMILIES: tuple[tuple[type, type], ...] = (
    (Decimal, Decimal), (dt.datetime, dt.datetime), (dt.date, dt.date), (dt.time, dt.time), (uuid.UUID, uuid.UUID),
    (bytes, bytes), (bytearray, bytes), (memoryview, bytes), (dt.timedelta, dt.timedelta),
    (ipaddress.IPv4Address, ipaddress.IPv4Address), (ipaddress.IPv6Address, ipaddress.IPv6Address),
    (ipaddress.IPv4Network, ipaddress.IPv4Network), (ipaddress.IPv6Network, ipaddress.IPv6Network),
)  # fmt: skip

#: The families whose text `from_json` reads back as the value, where the annotation names the family.
_READ_BACK = frozenset({Decimal, dt.datetime, dt.date, dt.time, uuid.UUID})

#: What to do instead, for the families nothing reads back from a JSON document.
_NOT_READ_BACK = {
    bytes: "encode them into a str yourself (base64, hex), or keep them in a bytea column",
    dt.timedelta: "send a number of seconds, or a str, yourself",
}

#: Floats from here up are written with an exponent (``1e+16``), which jsonb keeps as an integer.
_EXPONENT_FLOATS = 1e16


class NotJsonError(ValueError):
    """A value that JSON cannot represent exactly (the message says what and where); the caller names the
    parameter."""


def to_json(value: Any, annotation: Any = Any, *, record: bool = False) -> Any:
    """A Python value → something `json.dumps` turns into JSON that PostgreSQL accepts and that reads back as the
    same value: JSON's own types (strings with no NUL and no lone surrogate, finite numbers, lists, objects with
    string keys), dataclasses and NamedTuples as objects of their fields, enums as their labels. Anything else
    raises `NotJsonError` rather than being stored as something else.

    Values JSON has no type for go as their text where something reads the text back as the value. In a JSON
    document, that is the annotation (*annotation*, followed into fields, list items and dict values): a
    `Decimal`, date, datetime, time or UUID is sent where the annotation at its place is its class, which
    `from_json` turns the text back into; elsewhere (``Any``, ``dict[str, Any]``) it would come back as a string,
    and bytes, timedeltas and network addresses would everywhere. With *record*, the value is a composite's
    (``jsonb_populate_record``): the server parses each text as the field's own type, so all of them go, but
    inside a dict, which only a json or jsonb field holds, the document's rule applies."""
    return _to_json(value, annotation, record, 0, "")


def _to_json(value: Any, tp: Any, record: bool, depth: int, where: str) -> Any:
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
                f"{Decimal(repr(value)):f}, another number; send an int"
            )
            raise NotJsonError(msg)
        if value == 0 and math.copysign(1.0, value) < 0:
            msg = f"has -0.0{_at(where)}, which jsonb (a numeric) gives back as 0.0, another float; send 0.0"
            raise NotJsonError(msg)
        return value
    if isinstance(value, enum.Enum):
        return enum_label(value)
    if depth >= MAX_JSON_DEPTH:
        msg = f"is nested deeper than {MAX_JSON_DEPTH} levels, more than pgdecor sends as JSON"
        raise NotJsonError(msg)
    depth += 1
    place = _place(tp)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                msg = (
                    f"has the key {k!r} ({type(k).__qualname__}){_at(where)}: JSON keys are strings, so it would "
                    f"come back as {str(k)!r} (or collide with that key); use string keys"
                )
                raise NotJsonError(msg)
            out[_json_text(k, where)] = _to_json(v, place.value_of(k), False, depth, f"{where}[{k!r}]")
        return out
    # Loops, not comprehensions: one frame per level (before Python 3.12 a comprehension is a frame of its own),
    # so that MAX_JSON_DEPTH levels fit in Python's recursion limit.
    if isinstance(value, list):
        items = []
        for i, v in enumerate(value):
            items.append(_to_json(v, place.item, record, depth, f"{where}[{i}]"))
        return items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = _record_hints(value, place, record)
        fields = {}
        for f in dataclasses.fields(value):  # keyed by column: a composite's attribute, filled by its name
            fields[column_name(f)] = _to_json(
                getattr(value, f.name), hints.get(f.name, Any), record, depth, f"{where}.{f.name}"
            )
        return fields
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        hints = _record_hints(value, place, record)
        fields = {}
        for k, v in value._asdict().items():
            fields[k] = _to_json(v, hints.get(k, Any), record, depth, f"{where}.{k}")
        return fields
    if model_library(kind) is not None:  # the fields a row of it is read from, by name, as a dataclass's
        fields = {}
        for field in record_of(kind).fields:
            at = f"{where}.{field.attribute}"
            fields[field.name] = _to_json(getattr(value, field.attribute), field.annotation, record, depth, at)
        return fields
    for plain in (str, int, float):  # a subclass of one (not an Enum): its plain value
        if isinstance(value, plain):
            return _to_json(plain(value), tp, record, depth, where)
    for cls, family in _TEXT_FAMILIES:
        if isinstance(value, cls):
            return _text_form(value, family, place, record, where)
    fixes: dict[type, str] = {tuple: "a list", set: "a sorted list", frozenset: "a sorted list"}
    fix = fixes.get(kind, "a JSON type")
    msg = (
        f"has a value of type {kind.__qualname__}{_at(where)}, which JSON cannot represent"
        f"{' as itself: it would come back as a list' if kind is tuple else ''}; pass {fix} instead"
    )
    raise NotJsonError(msg)


def _text_form(value: Any, family: type, place: _Place, record: bool, where: str) -> str:
    """The text of a value JSON has no type for, where it reads back as the value (see `to_json`)."""
    text: str
    if family in (dt.datetime, dt.date, dt.time):
        text = value.isoformat()
    elif family is bytes:
        text = "\\x" + bytes(value).hex()
    elif family is dt.timedelta:  # exact: a float of seconds is not, beyond 2**53 microseconds
        text = f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds"
    else:
        text = str(value)
    if record or (place.cls is family and family in _READ_BACK):
        return text
    name = family.__name__
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    quoted = repr(text) if len(text) <= 40 else repr(text[:37] + "...")
    if family in _READ_BACK:
        msg = (
            f"has {shown}{_at(where)}, which JSON has no type for: it is sent as its text only where the stub's "
            f"annotation says {name} (a field `x: {name}`, `list[{name}]`, `dict[str, {name}]`), which reads it "
            f"back as itself, but here the annotation is {describe(place.annotation)}, so it would come back as the "
            f"string {quoted}; annotate it {name}, or convert it yourself"
        )
    else:
        fix = _NOT_READ_BACK.get(family, "send str(value) yourself")
        msg = (
            f"has {shown}{_at(where)}, which JSON has no type for: it would be stored as the string {quoted}, "
            f"and come back as one; {fix}"
        )
    raise NotJsonError(msg)


@dataclass(frozen=True)
class _Place:
    """What the annotation of a place in a JSON value says of the value there, and of the values inside it."""

    annotation: Any
    #: The class named, under ``Annotated`` and ``| None``; None for anything else (``Any``, a union, a generic).
    cls: type | None = None
    #: ``list[T]``: T; ``dict[str, V]``: V.
    item: Any = Any
    #: A TypedDict's keys and their annotations.
    keys: Mapping[str, Any] | None = None

    def value_of(self, key: str) -> Any:
        return self.item if self.keys is None else self.keys.get(key, Any)


_UNTYPED = _Place(Any)

#: Annotation → its `_Place`, made once.
_places: dict[Any, _Place] = {}

#: Class → its resolved field annotations ({} where they do not resolve).
_class_hints: dict[type, Mapping[str, Any]] = {}


def _place(tp: Any) -> _Place:
    if tp is Any:
        return _UNTYPED
    try:
        found = _places.get(tp)
    except TypeError:  # unhashable metadata in an Annotated: made again at each use
        return _make_place(tp)
    if found is None:
        found = _places[tp] = _make_place(tp)
    return found


def _make_place(tp: Any) -> _Place:
    inner, _ = bare(tp)
    origin = typing.get_origin(inner)
    args = typing.get_args(inner)
    item: Any = Any
    if origin is list and args:
        item = args[0]
    elif origin is dict and len(args) == 2:
        item = args[1]
    keys = _hints(inner) if is_typeddict(inner) else None
    named = isinstance(inner, type) and origin is None and inner is not object and inner is not Any
    return _Place(tp, inner if named else None, item, keys)


def _hints(cls: type) -> Mapping[str, Any]:
    found = _class_hints.get(cls)
    if found is None:
        try:
            found = typing.get_type_hints(cls)
        except Exception:  # noqa: BLE001 - an annotation that does not resolve (yet) says nothing of its field
            return {}
        _class_hints[cls] = found
    return found


def _record_hints(value: Any, place: _Place, record: bool) -> Mapping[str, Any]:
    """The annotations of the fields of a dataclass or NamedTuple *value*: a composite's are its class's; a JSON
    document's are those of the class the annotation names at its place (none where it names none, as
    ``Any`` reads the object back as a dict)."""
    if record:
        return _hints(type(value))
    cls = place.cls
    return _hints(cls) if cls is not None and isinstance(value, cls) else {}


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


def json_document(annotation: Any) -> Convert:
    """How a value bound for a json or jsonb parameter annotated *annotation* is sent (see `to_json`)."""
    return lambda value: None if value is None else Jsonb(to_json(value, annotation))


def json_record(annotation: Any) -> Convert:
    """How a dataclass (or a list of them) bound for a composite (or an array of them) is sent: as JSON the server
    turns into the composite by field name (see `to_json`)."""
    return lambda value: None if value is None else Jsonb(to_json(value, annotation, record=True))


def json_documents(annotation: Any) -> Convert:
    """How a list bound for a json[] or jsonb[] parameter is sent: each item a JSON document of the list's item
    annotation, None an SQL NULL element."""
    inner, _ = bare(annotation)
    args = typing.get_args(inner) if typing.get_origin(inner) is list else ()
    item = args[0] if args else Any

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            msg = f"is a {type(value).__qualname__}: an array of JSON documents takes a list, one document per element"
            raise NotJsonError(msg)
        out = []
        for i, v in enumerate(value):
            out.append(None if v is None else Jsonb(_to_json(v, item, False, 0, f"[{i}]")))
        return out

    return convert


def is_json_param(tp: Any) -> bool:
    """Annotations whose values go to the server as jsonb when nothing else is declared (``@query``)."""
    tp, _ = bare(tp)
    origin = typing.get_origin(tp) or tp
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return is_json_param(item)
    return (
        origin is dict
        or is_typeddict(tp)
        or (isinstance(tp, type) and (dataclasses.is_dataclass(tp) or model_library(tp) is not None))
    )
