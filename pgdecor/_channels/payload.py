"""Notification payloads: how values of a listener stub's annotation travel as a notification's text (`Payload`).

A ``str`` payload is sent as it is, so that a listener of ``str`` takes any notification, a trigger's too. Any
other annotation travels as JSON: what `_rows.json_dump.to_json` makes of the value (as for jsonb arguments),
checked once more against the shape the annotation gives it (`payload_shapes`), so that what is sent is what the
listener of that type decodes. Values JSON has no type for (bytes, timedeltas, non-finite decimals) are refused
rather than sent as something else; a pydantic model travels as its own JSON, and only if it reads back as an
equal model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pgdecor._annotations import describe, strip_annotated
from pgdecor._errors import ArgumentError, PayloadError
from pgdecor._rows.json_dump import NotJsonError, text_problem, to_json
from pgdecor._rows.json_load import from_json

from .payload_shapes import Check, Shapes, accept, is_model

__all__ = ["MAX_PAYLOAD_BYTES", "Payload"]

#: The longest payload PostgreSQL takes, in bytes (it refuses 8,000 and more, with the default block size).
MAX_PAYLOAD_BYTES = 7999


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
        self._model: Any = tp if is_model(tp) else None
        self._check: Check = accept
        self._convert: Callable[[Any], Any] = _identity
        if not self.raw and self._model is None:
            self._check = Shapes(stub).of(annotation, "the payload")
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


def _identity(value: Any) -> Any:
    return value


def _no_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _at(where: str) -> str:
    return f" at {where}" if where else ""


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
