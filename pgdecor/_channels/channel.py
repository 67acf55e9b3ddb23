"""Notification channels: their names, how a payload travels (`Payload`), and what a listener is told besides
payloads (`Missed`). Sending is `_stubs.notify`'s, listening `_channels.listener_async`'s.

A ``str`` payload is sent as it is, so that a listener of ``str`` takes any notification, a trigger's too. Any
other annotation travels as JSON: what `_rows.convert.to_json` makes of the value (as for jsonb arguments), checked
once more against the shape the annotation gives it, so that what is sent is what the listener of that type
decodes. Values JSON has no type for (bytes, timedeltas, non-finite decimals) are refused rather than sent as
something else; a pydantic model travels as its own JSON, and only if it reads back as an equal model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import json
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Union

from psycopg import sql
from typing_extensions import is_typeddict

from pgdecor._annotations import describe, is_namedtuple, strip_annotated
from pgdecor._errors import ArgumentError, PayloadError, SignatureError
from pgdecor._rows.convert import NotJsonError, enum_label, from_json, needs_json_conversion, text_problem, to_json
from pgdecor._rows.records import record_of
from pgdecor._run import trace

__all__ = [
    "MAX_CHANNEL_BYTES",
    "MAX_PAYLOAD_BYTES",
    "Missed",
    "Payload",
    "Subscription",
    "channel_name",
    "listen_sql",
]

#: The longest channel name PostgreSQL takes (NAMEDATALEN - 1): ``pg_notify`` refuses a longer one, and ``LISTEN``
#: cuts it short to another name.
MAX_CHANNEL_BYTES = 63
#: The longest payload PostgreSQL takes, in bytes (it refuses 8,000 and more, with the default block size).
MAX_PAYLOAD_BYTES = 7999


@dataclass(frozen=True)
class Missed:
    """What a listener yields once it listens, and again each time it listens anew after losing its connection:
    notifications sent before then (or while it was not listening) may not be delivered, so read again what the
    channel announces (a table's recent rows, say) when one comes::

        for event in events:
            if isinstance(event, Missed):
                rescan()
            else:
                handle(event)
    """

    #: The channel listened to.
    channel: str
    #: Why: ``"started"`` the first time, else what ended the previous connection.
    reason: str


def channel_name(where: str, channel: object) -> str:
    """*channel*, checked to be a name PostgreSQL takes as it is; else `SignatureError` from *where*."""
    if not isinstance(channel, str):
        msg = f"{where} takes the channel's name as a string, not {type(channel).__qualname__} {channel!r:.40}"
        raise SignatureError(msg)
    if not channel:
        msg = f"{where}: the channel's name is empty; name it (e.g. 'orders')"
        raise SignatureError(msg)
    problem = text_problem(channel, "a channel name")
    if problem is not None:
        msg = f"{where}: the channel name {channel!r:.80} has {problem}; name it with plain text"
        raise SignatureError(msg)
    size = len(channel.encode())
    if size > MAX_CHANNEL_BYTES:
        msg = (
            f"{where}: the channel name {channel!r:.80} is {size} bytes long; PostgreSQL's names are at most "
            f"{MAX_CHANNEL_BYTES} bytes (pg_notify refuses a longer one, and LISTEN would cut it short): shorten it"
        )
        raise SignatureError(msg)
    return channel


def listen_sql(channel: str) -> sql.Composed:
    """``LISTEN "channel"``: the name quoted, so that it is the very one ``pg_notify`` is given (case and all)."""
    return sql.SQL("LISTEN {}").format(sql.Identifier(channel))


@dataclass(frozen=True)
class Subscription:
    """What a listener stub says, for the listeners its calls return (of either kind)."""

    stub: str
    channel: str
    payload: Payload
    #: Seconds without a notification after which the connection is checked, and how long the check may take.
    check_every: float
    check_timeout: float
    #: Whether a payload that does not decode raises `PayloadError` (else it is skipped with a WARNING).
    raise_undecodable: bool

    @functools.cached_property
    def operation(self) -> trace.Operation:
        """What the spans of its listeners' subscriptions say (see `_run.trace`)."""
        operation = trace.Operation(self.stub, None, None)
        operation.operation = "LISTEN"
        operation.name = f"LISTEN {self.channel}"
        operation.attributes = {
            **operation.attributes,
            "db.operation.name": "LISTEN",
            "db.query.summary": operation.name,
            "db.query.text": listen_sql(self.channel).as_string(None),
        }
        return operation


# -- payloads ---------------------------------------------------------------------------------------------------

#: What checks a decoded JSON value against an annotation: the problem, said with where it is, or None.
_Check = Callable[[Any, str], "str | None"]


class Payload:
    """How values of one annotation travel as a notification's payload (see the module docstring): built once per
    stub, raising `SignatureError` for an annotation whose values cannot travel exactly."""

    __slots__ = ("_check", "_convert", "_model", "annotation", "raw", "stub")

    def __init__(self, stub: str, annotation: Any) -> None:
        self.stub = stub
        self.annotation = annotation
        tp = strip_annotated(annotation)
        #: A ``str`` payload, sent and received as it is.
        self.raw = tp is str
        self._model: Any = tp if _is_model(tp) else None
        self._check: _Check = _accept
        self._convert: Callable[[Any], Any] = _identity
        if not self.raw and self._model is None:
            self._check = _Shapes(stub).of(annotation, "the payload")
            self._convert = from_json(annotation)

    def encode(self, value: Any) -> str:
        """The text to send for *value*; `ArgumentError` if it cannot arrive as itself, or is too long."""
        if self.raw:
            if not isinstance(value, str):
                raise self._not_a(value)
            problem = text_problem(value, "a notification")
            if problem is not None:
                msg = f"{self.stub}: the payload has {problem}; send plain text, or annotate a type sent as JSON"
                raise ArgumentError(msg)
            text = str(value)
        elif self._model is not None:
            text = self._model_text(value)
        else:
            text = self._json_text(value)
        if len(text) * 4 > MAX_PAYLOAD_BYTES and (size := len(text.encode())) > MAX_PAYLOAD_BYTES:
            msg = (
                f"{self.stub}: the payload is {size:,} bytes{'' if self.raw else ' as JSON'}; PostgreSQL takes at "
                f"most {MAX_PAYLOAD_BYTES:,}: send what identifies the change (a key) and let the listener read "
                f"the rest"
            )
            raise ArgumentError(msg)
        return text

    def decode(self, text: str, channel: str) -> Any:
        """The value a payload stands for; `PayloadError` (carrying the text) if it is not one."""
        if self.raw:
            return text
        try:
            if self._model is not None:
                return self._model.model_validate_json(text)
            data = json.loads(text, parse_constant=_no_constant)
            problem = self._check(data, "")
            if problem is None:
                return self._convert(data)
        except (ValueError, TypeError, LookupError, ArithmeticError, RecursionError) as err:
            problem = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        msg = (
            f"{self.stub}: a notification on {channel!r} does not decode as {describe(self.annotation)} "
            f"({problem}); its payload was {text!r:.200}"
        )
        raise PayloadError(msg, channel, text)

    def _json_text(self, value: Any) -> str:
        try:
            data = to_json(value, self.annotation)
        except NotJsonError as err:
            msg = f"{self.stub}: the payload {err}"
            raise ArgumentError(msg) from None
        problem = _inexact(value, "")
        if problem is not None:
            msg = f"{self.stub}: the payload {problem}"
            raise ArgumentError(msg)
        problem = self._check(data, "")
        if problem is not None:
            msg = f"{self.stub}: the payload would not decode as {describe(self.annotation)}: {problem}"
            raise ArgumentError(msg)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def _model_text(self, value: Any) -> str:
        model = self._model
        if not isinstance(value, model):
            raise self._not_a(value)
        try:
            text: str = value.model_dump_json()
            same = model.model_validate_json(text) == value
        except ValueError as err:  # pydantic's errors are ValueErrors
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            msg = f"{self.stub}: the payload cannot travel as JSON and read back as {describe(model)}: {first}"
            raise ArgumentError(msg) from None
        if not same:
            msg = (
                f"{self.stub}: the payload would not arrive as itself: {describe(model)} reads its JSON "
                f"{text!r:.100} back as another value; send values JSON holds exactly"
            )
            raise ArgumentError(msg)
        return text

    def _not_a(self, value: Any) -> ArgumentError:
        msg = f"{self.stub}: the payload must be a {describe(self.annotation)}, not {type(value).__qualname__}"
        return ArgumentError(msg)


def _is_model(tp: Any) -> bool:
    """A pydantic model (or anything that reads and writes itself as JSON the same way)."""
    return isinstance(tp, type) and all(
        callable(getattr(tp, name, None)) for name in ("model_validate_json", "model_dump_json")
    )


def _accept(value: Any, where: str) -> str | None:  # noqa: ARG001 - a `_Check`
    return None


def _identity(value: Any) -> Any:
    return value


def _no_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _at(where: str) -> str:
    return f" at {where}" if where else ""


def _kind(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words."""
    if value is None:
        return "null"
    return _KINDS.get(type(value), type(value).__qualname__)


_KINDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "an object"}

#: Values `_inexact` looks no further into.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _inexact(value: Any, where: str) -> str | None:
    """What in *value* (already accepted by `to_json`, so finite in depth) JSON would carry as something else."""
    kind = type(value)
    if kind in _PLAIN:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return (
            f"has bytes{_at(where)}, which JSON has no type for (they would arrive as text); send them as a str "
            f"(base64, say), or send a key and let the listener read them"
        )
    if isinstance(value, dt.timedelta):
        return f"has a timedelta{_at(where)}, which would arrive as text; send its seconds as a number"
    if isinstance(value, Decimal) and not value.is_finite():
        return f"has the decimal {value}{_at(where)}, which JSON has no number for; send a finite one, or None"
    # Loops, not comprehensions: one frame per level, as in `to_json`.
    found = None
    if isinstance(value, dict):
        for k, v in value.items():
            found = found or _inexact(v, f"{where}[{k!r}]")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = found or _inexact(v, f"{where}[{i}]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            found = found or _inexact(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, tuple) and hasattr(value, "_asdict"):
        for k, v in value._asdict().items():
            found = found or _inexact(v, f"{where}.{k}")
    return found


#: Types JSON carries as text, which the listener's annotation turns back into themselves (`_rows.convert.from_json`).
_TEXT_TYPES = (dt.datetime, dt.date, dt.time, uuid.UUID)


class _Shapes:
    """Builds the `_Check` of an annotation: whether a decoded JSON value is what the listener's type is made from,
    so that the sender refuses what would not decode and the listener says why a payload does not."""

    def __init__(self, stub: str) -> None:
        self.stub = stub
        #: Record classes being built or built, for those that refer to themselves.
        self.records: dict[type, list[_Check]] = {}

    def unsupported(self, tp: Any, where: str, why: str = "") -> SignatureError:
        advice = why or (
            "use JSON's types (str, int, float, bool, None, lists, dicts with str keys), dataclasses, NamedTuples, "
            "TypedDicts, enums, dates, times, decimals or UUIDs"
        )
        msg = f"{self.stub}: {where} is {describe(tp)}, which a notification cannot carry as JSON exactly: {advice}"
        return SignatureError(msg)

    def of(self, annotation: Any, where: str) -> _Check:
        tp = strip_annotated(annotation)
        if tp is Any or tp is object:
            return _accept
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

    def of_class(self, tp: type, where: str) -> _Check:
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
        if _is_model(tp):
            raise self.unsupported(tp, where, "a pydantic model travels as the payload itself, not inside another type")
        raise self.unsupported(tp, where)

    def union(self, tp: Any, options: list[_Check]) -> _Check:
        def check(value: Any, where: str) -> str | None:
            for option in options:
                if option(value, where) is None:
                    return None
            return f"{_kind(value)}{_at(where)} is none of {describe(tp)}"

        return check

    def list_of(self, item: _Check) -> _Check:
        def check(value: Any, where: str) -> str | None:
            if type(value) is not list:
                return f"{_kind(value)}{_at(where)} is not an array"
            for i, v in enumerate(value):
                problem = item(v, f"{where}[{i}]")
                if problem is not None:
                    return problem
            return None

        return check

    def dict_of(self, item: _Check) -> _Check:
        def check(value: Any, where: str) -> str | None:
            if type(value) is not dict:
                return f"{_kind(value)}{_at(where)} is not an object"
            for k, v in value.items():
                problem = item(v, f"{where}[{k!r}]")
                if problem is not None:
                    return problem
            return None

        return check

    def record(self, cls: type) -> _Check:
        building = self.records.get(cls)
        if building is not None:  # a class that refers to itself: its check, once built

            def built(value: Any, where: str) -> str | None:
                return building[0](value, where)

            return built
        made: list[_Check] = []
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


def _expect(test: Callable[[Any], bool], expected: str) -> _Check:
    def check(value: Any, where: str) -> str | None:
        return None if test(value) else f"{_kind(value)}{_at(where)} where {expected} is expected"

    return check
