"""A stub's return annotation → how many rows it expects and what each row becomes."""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import typing
from dataclasses import dataclass
from typing import Any

from pgdecor._annotations import bare, describe, is_dict_row, is_record_type, split_optional, strip_annotated
from pgdecor._errors import SignatureError
from pgdecor._rows.streams import StreamBase


class Shape(enum.Enum):
    """How many rows a call expects, and how they are handed back."""

    NONE = "nothing"
    ONE = "exactly one row"
    OPTIONAL = "zero or one row"
    MANY = "a list of rows"
    STREAM = "a stream of rows"


@dataclass(frozen=True)
class ResultPlan:
    shape: Shape
    #: The type each row becomes: a record class, ``dict[str, ...]``, or a scalar annotation.
    row_type: Any
    #: True when a row is one column mapped to a value; False when columns map onto a record (or a dict).
    scalar: bool
    #: For scalars, and the document a dict of one column is: whether NULL is an acceptable value.
    nullable: bool
    #: The whole annotation (``| None`` removed), for a function that returns one value (a json document, an
    #: array, a composite) rather than rows: the value becomes this type, and ``| None`` allows NULL.
    value_type: Any = None
    value_nullable: bool = False

    @property
    def counts(self) -> bool:
        """Whether a command (a statement that returns no rows) gives the number of rows it affected: a stub
        annotated ``-> int``."""
        return self.shape is Shape.ONE and self.scalar and self.row_type is int


_LIST_ORIGINS = (list, collections.abc.Sequence)
_SYNC_STREAMS = (collections.abc.Iterator, collections.abc.Iterable)
_ASYNC_STREAMS = (collections.abc.AsyncIterator, collections.abc.AsyncIterable)


def _is_stream(origin: Any, kind: tuple[type, ...]) -> bool:
    """Whether *origin* is an iterator of *kind*: one of its ABCs, or pgdecor's `Stream` (`AsyncStream`)."""
    if origin in kind:
        return True
    return isinstance(origin, type) and issubclass(origin, StreamBase) and issubclass(origin, kind[0])


def read_result(stub: str, annotation: Any, *, is_async: bool) -> ResultPlan:
    """Classify a return annotation; raise SignatureError for one pgdecor cannot produce."""
    plan = _read(stub, annotation, is_async=is_async)
    value_type, optional = bare(annotation)
    nullable = optional or value_type in (Any, object)
    return dataclasses.replace(plan, value_type=value_type, value_nullable=nullable)


def _read(stub: str, annotation: Any, *, is_async: bool) -> ResultPlan:
    tp = strip_annotated(annotation)
    if tp is None or tp is type(None):
        return ResultPlan(Shape.NONE, None, scalar=False, nullable=True)
    inner, optional = split_optional(tp)
    origin = typing.get_origin(inner)
    if optional:
        rows_of_records = origin in _LIST_ORIGINS and is_record_type(strip_annotated(_item(inner)))
        if rows_of_records or _is_stream(origin, _SYNC_STREAMS) or _is_stream(origin, _ASYNC_STREAMS):
            msg = f"{stub}: return annotation {describe(annotation)} cannot be None; drop `| None`"
            raise SignatureError(msg)
        # `list[T] | None` (T a scalar) is one value that may be NULL: an array (a function returning `int[]`).
        return _row(stub, Shape.OPTIONAL, inner, nullable=True)
    if origin in _LIST_ORIGINS:
        return _row(stub, Shape.MANY, _item(inner))
    if _is_stream(origin, _SYNC_STREAMS) or _is_stream(origin, _ASYNC_STREAMS):
        wanted = _ASYNC_STREAMS if is_async else _SYNC_STREAMS
        if not _is_stream(origin, wanted):
            fix = "AsyncIterator[T] in an async stub" if is_async else "Iterator[T] in a sync stub"
            msg = f"{stub}: return annotation {describe(annotation)} does not match the stub's kind; use {fix}"
            raise SignatureError(msg)
        return _row(stub, Shape.STREAM, _item(inner))
    return _row(stub, Shape.ONE, inner)


def _item(tp: Any) -> Any:
    args = typing.get_args(tp)
    return args[0] if args else Any


#: Annotations no column becomes: what to write instead.
_UNFIT = {
    set: "list[T]",
    frozenset: "list[T]",
    object: "Any, or the column's type",
}


def _row(stub: str, shape: Shape, tp: Any, *, nullable: bool = False) -> ResultPlan:
    tp = strip_annotated(tp)
    item, item_optional = split_optional(tp)
    origin = typing.get_origin(item)
    if isinstance(origin, type) and dataclasses.is_dataclass(origin):  # a generic row, `Row[T]`: its class
        item = origin
    unfit = _UNFIT.get(typing.get_origin(item) or item)
    if typing.get_origin(item) is tuple and typing.get_args(item) != (Any, ...):
        unfit = "a NamedTuple or a dataclass (a row), list[T] (an array), or tuple[Any, ...] (an anonymous record)"
    if unfit is not None:
        msg = f"{stub}: return annotation {describe(item)} is not a value pgdecor makes from a result; use {unfit}"
        raise SignatureError(msg)
    if is_dict_row(item):  # the row as a dict, or (of one column) its JSON document, which may be NULL
        return ResultPlan(shape, item, scalar=False, nullable=nullable or item_optional)
    if is_record_type(item):
        if item_optional:
            msg = f"{stub}: rows of {describe(tp)} cannot be None; annotate the rows as {describe(item)}"
            raise SignatureError(msg)
        return ResultPlan(shape, item, scalar=False, nullable=False)
    if typing.get_origin(item) is dict or item in (collections.abc.Mapping, collections.abc.MutableMapping):
        msg = f"{stub}: rows as {describe(item)} are not supported; use dict[str, Any] or a dataclass"
        raise SignatureError(msg)
    return ResultPlan(shape, item, scalar=True, nullable=nullable or item_optional or item is Any)
