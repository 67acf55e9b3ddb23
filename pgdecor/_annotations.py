"""Small helpers to read type annotations, shared by parameters, results and row mapping."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import ipaddress
import types
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Union

from typing_extensions import is_typeddict

#: Types whose values are one column, not a row.
SCALAR_TYPES: frozenset[type] = frozenset(
    {
        int,
        float,
        Decimal,
        str,
        bytes,
        bool,
        dt.date,
        dt.datetime,
        dt.time,
        dt.timedelta,
        uuid.UUID,
        ipaddress.IPv4Address,
        ipaddress.IPv6Address,
        ipaddress.IPv4Network,
        ipaddress.IPv6Network,
        ipaddress.IPv4Interface,
        ipaddress.IPv6Interface,
    }
)

_UNION_TYPES: tuple[Any, ...] = (Union, types.UnionType)


def split_optional(tp: Any) -> tuple[Any, bool]:
    """Return ``(T, True)`` for ``T | None`` (and ``Optional[T]``), ``(tp, False)`` otherwise."""
    if typing.get_origin(tp) in _UNION_TYPES:
        args = typing.get_args(tp)
        if type(None) in args:
            rest = tuple(a for a in args if a is not type(None))
            inner = rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007 - rest is a runtime tuple
            return inner, True
    return tp, False


def strip_annotated(tp: Any) -> Any:
    """``Annotated[T, ...]`` → ``T``."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def bare(tp: Any) -> tuple[Any, bool]:
    """The type under ``Annotated`` and ``| None``, in either order, and whether None was allowed."""
    inner, optional = split_optional(strip_annotated(tp))
    return strip_annotated(inner), optional


def is_nullable(tp: Any) -> bool:
    """Whether a value of annotation *tp* may be None."""
    tp = strip_annotated(tp)
    return tp is Any or tp is object or tp is None or tp is type(None) or split_optional(tp)[1]


def is_record_type(tp: Any) -> bool:
    """Whether *tp* is a class whose instances are built from a row's columns."""
    if tp is Any or tp is object:  # Any is a class since Python 3.11, and means "the value as it is"
        return False
    if not isinstance(tp, type) or typing.get_origin(tp) is not None or issubclass(tp, (enum.Enum, *SCALAR_TYPES)):
        return False
    return is_structured(tp) or is_typeddict(tp) or tp.__module__ != "builtins"


def is_dict_row(tp: Any) -> bool:
    """Whether *tp* is ``dict`` or ``dict[str, ...]``: a row as a dict, or the document of a json column."""
    if tp is dict:
        return True
    if typing.get_origin(tp) is not dict:
        return False
    key, _ = typing.get_args(tp)
    return key is str


def column_name(field: dataclasses.Field[Any]) -> Any:
    """The column a dataclass field is filled from, and its key in JSON: ``field(metadata={"column": ...})``, else
    the field's name."""
    return field.metadata.get("column", field.name)


def is_namedtuple(tp: type) -> bool:
    return issubclass(tp, tuple) and hasattr(tp, "_fields")


def model_library(tp: Any) -> str | None:
    """``"pydantic"`` (a v2 model), ``"attrs"`` or ``"msgspec"`` (a Struct) for a class of one of those model
    libraries, None for any other: told by the attributes each sets on its classes, so that asking imports none."""
    if isinstance(getattr(tp, "__pydantic_fields__", None), dict) and hasattr(tp, "model_validate"):
        return "pydantic"  # a pydantic dataclass has the fields too, and is read as the dataclass it is
    if isinstance(getattr(tp, "__attrs_attrs__", None), tuple):
        return "attrs"
    if isinstance(getattr(tp, "__struct_fields__", None), tuple):
        return "msgspec"
    return None


def is_structured(tp: Any) -> bool:
    """Whether *tp* is a class of named, typed fields: a dataclass, NamedTuple, pydantic model, attrs class or
    msgspec Struct (a row, a composite value, a JSON object)."""
    return isinstance(tp, type) and (dataclasses.is_dataclass(tp) or is_namedtuple(tp) or model_library(tp) is not None)


def describe(tp: Any) -> str:
    """A short readable name for an annotation, for error messages."""
    if isinstance(tp, type) and typing.get_origin(tp) is None:
        return tp.__qualname__ if tp.__module__ in ("builtins", "typing") else f"{tp.__module__}.{tp.__qualname__}"
    return repr(tp).replace("typing.", "")


def list_type(item: Any) -> Any:
    """``list[item]`` for an item type known only at runtime."""
    return list[item]


def qualified_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a function, as users see it in tracebacks."""
    return f"{fn.__module__}.{fn.__qualname__}"
