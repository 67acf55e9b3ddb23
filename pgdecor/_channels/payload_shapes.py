"""The shapes of notification payloads: whether a decoded JSON value is what a listener's annotation is made from
(a `Check` per annotation, built once by `Shapes`), so that the sender refuses what would not decode and the
listener says why a payload does not; and `SignatureError` for an annotation whose values JSON cannot carry
exactly (unions JSON cannot tell apart, dicts with keys other than strings, classes it has no form for).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Union

from typing_extensions import is_typeddict

from pgdecor._annotations import describe, is_namedtuple, strip_annotated
from pgdecor._errors import SignatureError
from pgdecor._rows.convert import enum_label
from pgdecor._rows.json_load import from_json, needs_json_conversion
from pgdecor._rows.records import record_of

__all__ = ["Check", "Shapes", "accept", "is_model"]

#: What checks a decoded JSON value against an annotation: the problem, said with where it is, or None.
Check = Callable[[Any, str], "str | None"]


def is_model(tp: Any) -> bool:
    """A pydantic model (or anything that reads and writes itself as JSON the same way)."""
    return isinstance(tp, type) and all(
        callable(getattr(tp, name, None)) for name in ("model_validate_json", "model_dump_json")
    )


def accept(value: Any, where: str) -> str | None:  # noqa: ARG001 - a `Check`
    return None


def _at(where: str) -> str:
    return f" at {where}" if where else ""


def _kind(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words."""
    if value is None:
        return "null"
    return _KINDS.get(type(value), type(value).__qualname__)


_KINDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "an object"}


#: Types JSON carries as text, which the listener's annotation turns back into themselves
#: (`_rows.json_load.from_json`).
_TEXT_TYPES = (dt.datetime, dt.date, dt.time, uuid.UUID)


class Shapes:
    """Builds the `Check` of an annotation: whether a decoded JSON value is what the listener's type is made from,
    so that the sender refuses what would not decode and the listener says why a payload does not."""

    def __init__(self, stub: str) -> None:
        self.stub = stub
        #: Record classes being built or built, for those that refer to themselves.
        self.records: dict[type, list[Check]] = {}

    def unsupported(self, tp: Any, where: str, why: str = "") -> SignatureError:
        advice = why or (
            "use JSON's types (str, int, float, bool, None, lists, dicts with str keys), dataclasses, NamedTuples, "
            "TypedDicts, enums, dates, times, decimals or UUIDs"
        )
        msg = f"{self.stub}: {where} is {describe(tp)}, which a notification cannot carry as JSON exactly: {advice}"
        return SignatureError(msg)

    def of(self, annotation: Any, where: str) -> Check:
        tp = strip_annotated(annotation)
        if tp is Any or tp is object:
            return accept
        if tp is None or tp is type(None):
            return _expect(lambda v: v is None, "null")
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (Union, types.UnionType):
            members = [a for a in args if a is not type(None)]
            if len(members) > 1 and any(needs_json_conversion(m) for m in members):
                why = (
                    "JSON cannot tell its members apart, so a value would arrive as text or an object rather than "
                    "as the member sent; send one type, or a dataclass with a field for each"
                )
                raise self.unsupported(tp, where, why)
            return self.union(tp, [self.of(a, where) for a in args])
        if origin is typing.Literal:
            return _expect(lambda v: any(v == a and type(v) is type(a) for a in args), f"one of {args!r}")
        if origin is list or tp is list:
            return self.list_of(self.of(args[0] if args else Any, f"{where}'s items"))
        if origin is dict or tp is dict:
            if args and strip_annotated(args[0]) not in (str, Any):
                raise self.unsupported(tp, where, "JSON's keys are strings; use dict[str, ...]")
            return self.dict_of(self.of(args[1] if args else Any, f"{where}'s values"))
        if not isinstance(tp, type) or origin is not None:
            raise self.unsupported(tp, where)
        return self.of_class(tp, where)

    def of_class(self, tp: type, where: str) -> Check:
        if tp is bool:
            return _expect(lambda v: v is True or v is False, "a boolean")
        if tp is int:
            return _expect(lambda v: type(v) is int, "an integer")
        if tp is float:
            return _expect(lambda v: type(v) in (int, float), "a number")
        if tp is str:
            return _expect(lambda v: type(v) is str, "a string")
        if issubclass(tp, enum.Enum):
            labels = {enum_label(m) for m in tp}
            return _expect(lambda v: type(v) is str and v in labels, f"one of {sorted(labels)!r}")
        if tp is Decimal or issubclass(tp, _TEXT_TYPES):
            convert = from_json(tp)
            kinds = (str, int, float) if tp is Decimal else (str,)
            return _expect(lambda v: type(v) in kinds and _converts(convert, v), f"a {tp.__name__} (as text)")
        if dataclasses.is_dataclass(tp) or is_namedtuple(tp) or is_typeddict(tp):
            return self.record(tp)
        if is_model(tp):
            raise self.unsupported(tp, where, "a pydantic model travels as the payload itself, not inside another type")
        raise self.unsupported(tp, where)

    def union(self, tp: Any, options: list[Check]) -> Check:
        def check(value: Any, where: str) -> str | None:
            for option in options:
                if option(value, where) is None:
                    return None
            return f"{_kind(value)}{_at(where)} is none of {describe(tp)}"

        return check

    def list_of(self, item: Check) -> Check:
        def check(value: Any, where: str) -> str | None:
            if type(value) is not list:
                return f"{_kind(value)}{_at(where)} is not an array"
            for i, v in enumerate(value):
                problem = item(v, f"{where}[{i}]")
                if problem is not None:
                    return problem
            return None

        return check

    def dict_of(self, item: Check) -> Check:
        def check(value: Any, where: str) -> str | None:
            if type(value) is not dict:
                return f"{_kind(value)}{_at(where)} is not an object"
            for k, v in value.items():
                problem = item(v, f"{where}[{k!r}]")
                if problem is not None:
                    return problem
            return None

        return check

    def record(self, cls: type) -> Check:
        building = self.records.get(cls)
        if building is not None:  # a class that refers to itself: its check, once built

            def built(value: Any, where: str) -> str | None:
                return building[0](value, where)

            return built
        made: list[Check] = []
        self.records[cls] = made
        if is_typeddict(cls):
            for f in record_of(cls).fields:
                if needs_json_conversion(f.annotation):
                    why = (
                        "a TypedDict is the decoded JSON as it is, so the field would arrive as text or an object; "
                        "use a dataclass, or annotate the field with JSON's type"
                    )
                    raise self.unsupported(f.annotation, f"field {cls.__qualname__}.{f.name}", why)
        fields = [
            (f.name, not f.has_default, self.of(f.annotation, f"field {cls.__qualname__}.{f.name}"))
            for f in record_of(cls).fields
        ]
        name = describe(cls)

        def check(value: Any, where: str) -> str | None:
            if type(value) is not dict:
                return f"{_kind(value)}{_at(where)} is not an object (of {name})"
            for field, required, field_check in fields:
                if field in value:
                    problem = field_check(value[field], f"{where}.{field}")
                    if problem is not None:
                        return problem
                elif required:
                    return f"the object{_at(where)} has no {field!r}, which {name} requires"
            return None

        made.append(check)
        return check


def _converts(convert: Callable[[Any], Any], value: Any) -> bool:
    """Whether *value* is the text of a date, time, decimal or UUID (as *convert* reads it)."""
    try:
        convert(value)
    except (ValueError, ArithmeticError):
        return False
    return True


def _expect(test: Callable[[Any], bool], expected: str) -> Check:
    def check(value: Any, where: str) -> str | None:
        return None if test(value) else f"{_kind(value)}{_at(where)} where {expected} is expected"

    return check
