"""Which functions fit a `@procedure` stub: whether a Python annotation can be passed where a type is declared
(`compatible`), and how a stub's parameters bind to a function's arguments, by name or by position (`match`).
Plain functions over what `_plan.catalog` read; picking the one overload among those that fit is the call's
(`_plan.procedure`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import ipaddress
import types
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from psycopg.types.multirange import Multirange
from psycopg.types.range import Range
from typing_extensions import is_typeddict

from pgdecor._annotations import (
    bare,
    describe,
    is_structured,
    list_type,
    model_library,
    split_optional,
    strip_annotated,
)

from .catalog import POLYMORPHIC_ARRAYS, TEXT_TYPES, Arg, Function, PgType

__all__ = ["Binding", "Match", "StubParam", "compatible", "is_polymorphic_fit", "match"]


def compatible(annotation: Any, pgtype: PgType) -> bool:
    """Whether a Python value annotated *annotation* can be passed where *pgtype* is declared."""
    tp, _ = split_optional(annotation)
    for hint in getattr(tp, "__metadata__", ()):
        if isinstance(hint, str):  # `items` and `test.items` alike, when they are the same type
            return hint in (pgtype.sql, pgtype.base, pgtype.name, pgtype.qualified)
    tp = strip_annotated(tp)
    if tp is Any or tp is object or isinstance(tp, typing.TypeVar):  # a TypeVar: whatever the call's types make
        return True
    if pgtype.polymorphic:
        return is_polymorphic_fit(tp, pgtype.base)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):  # IPv4Address | IPv6Address: each must fit
        return all(compatible(member, pgtype) for member in typing.get_args(tp))
    if pgtype.category == "A":
        if origin is not list or pgtype.element is None:
            return False
        (item,) = typing.get_args(tp) or (Any,)
        item, _ = bare(item)
        # PostgreSQL arrays of any dimension share one type: list[list[T]] fits T[] too.
        return compatible(item, pgtype if typing.get_origin(item) is list else pgtype.element)
    if pgtype.base in ("json", "jsonb"):
        return _is_json_like(tp)
    if origin is Literal or (isinstance(tp, type) and issubclass(tp, enum.Enum)):
        return pgtype.kind == "e" or pgtype.category == "S"
    if origin is dict or tp is dict:
        return pgtype.base == "hstore"
    if isinstance(origin, type) and issubclass(origin, (Range, Multirange)):
        return pgtype.kind == ("m" if issubclass(origin, Multirange) else "r")
    if origin is tuple:  # a record's fields, as psycopg reads a record whose shape is not declared
        return pgtype.base == "record"
    if not isinstance(tp, type) or origin is not None:
        return False
    if tp is bool:
        return pgtype.category == "B"
    if tp is int:
        return pgtype.category == "N"
    if tp in (float, Decimal):
        return pgtype.category == "N" and pgtype.base not in ("int2", "int4", "int8", "oid")
    if tp is str:  # text, and the types psycopg reads as text (xml, tsvector, money, bit strings, geometry, ...)
        return (
            pgtype.category in ("S", "E", "G", "V")
            or pgtype.kind == "e"
            or pgtype.base in TEXT_TYPES
            or (pgtype.category == "U" and pgtype.kind == "b")
        )
    if issubclass(tp, (Range, Multirange)):
        return pgtype.kind == ("m" if issubclass(tp, Multirange) else "r")
    if is_structured(tp):
        return pgtype.kind == "c"
    bases = _SCALAR_BASES.get(tp)
    return bases is None or pgtype.base in bases


def is_polymorphic_fit(tp: Any, base: str) -> bool:
    """Whether an argument annotated *tp* can be passed where the polymorphic pseudo-type *base* is declared."""
    if base in POLYMORPHIC_ARRAYS:
        return typing.get_origin(tp) is list or isinstance(tp, typing.TypeVar)
    return True


_SCALAR_BASES: dict[type, tuple[str, ...]] = {
    bytes: ("bytea",),
    dt.date: ("date",),
    dt.datetime: ("timestamp", "timestamptz"),
    dt.time: ("time", "timetz"),
    dt.timedelta: ("interval",),
    uuid.UUID: ("uuid",),
    ipaddress.IPv4Address: ("inet",),
    ipaddress.IPv6Address: ("inet",),
    ipaddress.IPv4Interface: ("inet",),
    ipaddress.IPv6Interface: ("inet",),
    ipaddress.IPv4Network: ("cidr",),
    ipaddress.IPv6Network: ("cidr",),
}


def _is_json_like(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    return (
        origin in (dict, list, Mapping)
        or is_typeddict(tp)
        or (isinstance(tp, type) and (dataclasses.is_dataclass(tp) or model_library(tp) is not None))
        or tp in (str, int, float, bool)
    )


@dataclass(frozen=True)
class StubParam:
    """A stub parameter as resolution sees it."""

    name: str
    annotation: Any
    variadic: bool = False


@dataclass(frozen=True)
class Binding:
    """How one function argument is filled in a call."""

    arg: Arg
    #: Index of the stub parameter giving the value, or None when it comes from the instance (``self.<name>``).
    param: int | None


@dataclass(frozen=True)
class Match:
    function: Function
    named: bool
    bindings: tuple[Binding, ...]


def match(function: Function, params: list[StubParam], *, has_self: bool, typed: bool = True) -> Match | str:
    """Bind the stub's parameters to *function*'s arguments, or say why they do not fit (not *typed*: by names and
    number alone)."""
    inputs = function.inputs
    named = all(a.name for a in inputs)
    bindings: list[Binding] = []
    if named:
        by_name = {p.name: i for i, p in enumerate(params)}
        unknown = [p.name for p in params if p.name not in {a.name for a in inputs}]
        if unknown:
            return f"it has no parameter {unknown[0]!r}"
        for arg in inputs:
            index = by_name.get(arg.name or "")
            if index is not None:
                bindings.append(Binding(arg, index))
            elif has_self:
                bindings.append(Binding(arg, None))
            elif not arg.has_default:
                return f"parameter {arg.name!r} has no default and the stub does not pass it"
    else:
        required = sum(not a.has_default for a in inputs)
        if not required <= len(params) <= len(inputs):
            return f"it takes {required} to {len(inputs)} unnamed arguments, the stub passes {len(params)}"
        bindings = [Binding(arg, i) for i, arg in enumerate(inputs[: len(params)])]
    for b in bindings:
        if b.param is None:
            continue
        p = params[b.param]
        if p.variadic != (b.arg.mode == "v"):
            return f"{p.name!r} is {'not ' if not p.variadic else ''}VARIADIC in the stub but not in the function"
        annotation = list_type(p.annotation) if p.variadic else p.annotation
        if typed and not compatible(annotation, b.arg.type):
            return f"{p.name!r} is {describe(p.annotation)} in the stub but {b.arg.type.sql} in the function"
    return Match(function, named, tuple(bindings))
