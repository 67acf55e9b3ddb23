"""A stub's parameters: read once from its signature and annotations, checked cheaply on every call.

Each `Param` knows the check its values must pass and the placeholder format they are sent in; `compile_check`
makes one function of the checks, run on the argument tuple before anything is sent. `DEFAULT` leaves an argument
to the function's own default, and `Arg` names the argument a parameter passes.
"""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, NoReturn

from psycopg import adapters
from psycopg.adapt import PyFormat
from typing_extensions import is_typeddict

from pgdecor._annotations import bare, describe, is_structured, split_optional
from pgdecor._codegen import define, named
from pgdecor._errors import ArgumentError, SignatureError
from pgdecor._rows.json_dump import text_problem

Check = Callable[[Any], bool]


class _Default:
    """The type of `DEFAULT`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "pgdecor.DEFAULT"

    def __reduce__(self) -> str:
        return "DEFAULT"


#: Default value of a stub parameter that PostgreSQL should fill with the function's own default when the
#: caller leaves it out: ``def f(a: int, b: int = DEFAULT) -> ...``.
DEFAULT: Any = _Default()


@dataclass(frozen=True)
class Arg:
    """The name of the argument a `@procedure` stub's parameter passes, where Python cannot name the parameter so
    (a keyword, a name that is no identifier)::

        @procedure('edge."class"')
        def class_(from_: Annotated[int, Arg("from")], def_: Annotated[str, Arg("def")]) -> str: ...

    The function is then called with ``"from" => ..., "def" => ...``; a parameter without one passes the argument
    of its own name.
    """

    name: str

    def __post_init__(self) -> None:
        name: object = self.name  # whatever a caller passed, typed or not
        if not isinstance(name, str) or not name:
            msg = f"Arg({self.name!r}): name the argument the parameter passes, as a non-empty str"
            raise SignatureError(msg)


def arg_name(annotation: Any) -> str | None:
    """The argument an `Arg` in *annotation* names (``Annotated[T, Arg(...)]``, under ``| None`` or over it)."""
    for tp in (annotation, split_optional(annotation)[0]):
        found = [hint for hint in getattr(tp, "__metadata__", ()) if isinstance(hint, Arg)]
        if found:
            return found[-1].name
    return None


@dataclass(frozen=True)
class Param:
    """One parameter of a stub, as the SQL side needs it."""

    name: str
    annotation: Any
    #: Predicate run on every call, or None when any value is accepted.
    check: Check | None
    #: psycopg placeholder format: "b" (binary, sent with the type the annotation implies) or "s".
    format: Literal["b", "s"]
    #: ``*name``: the values arrive as a tuple (a VARIADIC argument).
    variadic: bool = False
    #: A class whose exact instances pass `check` (the common case, tested first), and whether None does.
    exact: type | None = None
    optional: bool = False


def make_param(stub: str, p: inspect.Parameter, annotation: Any) -> Param:
    """Precompute the per-call check and placeholder format of one parameter."""
    check = _check_for(stub, p.name, annotation)
    if check is not None and p.default is DEFAULT:
        inner = check
        check = lambda v: v is DEFAULT or inner(v)  # noqa: E731 - a closure over inner
    variadic = p.kind is p.VAR_POSITIONAL
    if variadic:
        item = check
        check = None if item is None else (lambda values: all(map(item, values)))
    tp, optional = bare(annotation)
    exact = tp if isinstance(tp, type) and typing.get_origin(tp) is None and not variadic else None
    return Param(p.name, annotation, check, placeholder_format(annotation), variadic, exact, optional and not variadic)


def receiver_param(name: str) -> Param:
    """The ``self``/``cls`` of a method stub: passed along, never checked."""
    return Param(name, Any, None, "s")


def compile_check(stub: str, params: tuple[Param, ...]) -> Callable[[tuple[Any, ...]], None] | None:
    """A function raising ArgumentError for the first argument that does not fit its annotation (None when
    every value is accepted), compiled so that a fitting call costs a type comparison per argument."""
    namespace: dict[str, Any] = {"fail": lambda i, v: _fail(stub, params[i], v)}
    lines = ["def check(args):"]
    for i, param in enumerate(params):
        if param.check is None:
            continue
        namespace[f"c{i}"] = param.check
        condition = f"c{i}(v)"
        if param.exact is str:  # the common case inline; c{i} finds the strings PostgreSQL cannot take
            namespace[f"t{i}"] = str
            condition = f"(type(v) is t{i} and v.isascii() and '\\x00' not in v) or {condition}"
        elif param.exact is not None:
            namespace[f"t{i}"] = param.exact
            condition = f"type(v) is t{i} or {condition}"
        if param.optional:
            condition = f"v is None or {condition}"
        lines += [f"    v = args[{i}]", f"    if not ({condition}):", f"        fail({i}, v)"]
    if len(lines) == 1:
        return None
    check: Callable[[tuple[Any, ...]], None] = define("\n".join(lines), "check", "argument check", namespace)
    named(check, "check", "check", stub, "argument check")
    return check


def _fail(stub: str, param: Param, value: Any) -> NoReturn:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    problem = _text_problem(value)
    if problem is not None:
        msg = f"{stub}(): argument {param.name!r} {problem}; nothing was sent to the server"
    else:
        msg = (
            f"{stub}(): argument {param.name!r} must be {describe(param.annotation)}, "
            f"got {type(value).__qualname__} {shown}; nothing was sent to the server"
        )
    raise ArgumentError(msg)


def _is_text(v: Any) -> bool:
    """A str PostgreSQL can store: no NUL character, and UTF-8 encodable (no lone surrogate)."""
    return isinstance(v, str) and _text_problem(v) is None


def _text_problem(value: Any, where: str = "") -> str | None:
    """What makes a string (or a string in a list) unsendable, or None."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _text_problem(item, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    if not isinstance(value, str):
        return None
    problem = text_problem(value, "PostgreSQL text", where)
    return None if problem is None else f"has {problem}"


def placeholder_format(annotation: Any) -> Literal["b", "s"]:
    # Binary placeholders carry the type psycopg derives from the Python value (text for str, int2/4/8 by
    # magnitude, timestamptz for aware datetimes, ...); text placeholders would send str as "unknown" and let
    # the server guess.
    tp, _ = bare(annotation)
    base = typing.get_origin(tp) or tp
    if isinstance(tp, typing.TypeVar):
        return "b"  # binary placeholders carry each value's own type, which a polymorphic function needs
    if base in (typing.Union, types.UnionType):
        members = typing.get_args(tp)
        return "b" if all(placeholder_format(m) == "b" for m in members) else "s"
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return "s"  # its label, untyped: the server takes it as the enum type the SQL compares it with
    if not isinstance(base, type) or base is object:
        return "s"
    try:
        adapters.get_dumper(base, PyFormat.BINARY)
    except Exception:  # noqa: BLE001 - psycopg raises ProgrammingError or a subclass; any means "no binary"
        return "s"
    if base is list and not all(placeholder_format(a) == "b" for a in typing.get_args(tp)):
        return "s"
    return "b"


def _check_for(stub: str, name: str, annotation: Any) -> Check | None:
    tp, optional = bare(annotation)
    inner = _value_check(stub, name, tp)
    if inner is None or not optional:
        return inner
    return lambda v: v is None or inner(v)


def _is_int(v: Any) -> bool:
    return type(v) is int or (isinstance(v, int) and not isinstance(v, bool))


def _is_float(v: Any) -> bool:
    return type(v) is float or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _is_decimal(v: Any) -> bool:
    return isinstance(v, (Decimal, int)) and not isinstance(v, bool)


def _is_bytes(v: Any) -> bool:
    return isinstance(v, (bytes, bytearray, memoryview))


def _is_date(v: Any) -> bool:
    # A datetime is a date to Python, but psycopg would send it as a timestamp.
    return isinstance(v, dt.date) and not isinstance(v, dt.datetime)


_SPECIAL_CHECKS: dict[Any, Check] = {
    str: _is_text,
    int: _is_int,
    float: _is_float,
    Decimal: _is_decimal,
    bytes: _is_bytes,
    dt.date: _is_date,
}


def _value_check(stub: str, name: str, tp: Any) -> Check | None:
    """The check for a non-None value of annotation *tp*; None means "anything goes"."""
    if tp is Any or tp is object or isinstance(tp, typing.TypeVar):  # a TypeVar: a generic (polymorphic) stub
        return None
    if tp in _SPECIAL_CHECKS:
        return _SPECIAL_CHECKS[tp]
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = frozenset(typing.get_args(tp))
        return lambda v: v in allowed
    if origin in (typing.Union, types.UnionType):  # of scalar types: IPv4Address | IPv6Address
        checks = [_value_check(stub, name, member) for member in typing.get_args(tp)]
        if any(c is None for c in checks):
            return None
        return lambda v: any(c(v) for c in checks)  # type: ignore[misc]
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        item_check = _check_for(stub, name, item)
        if item_check is None:
            return lambda v: isinstance(v, list)
        return lambda v: isinstance(v, list) and all(map(item_check, v))
    if origin is dict or tp is dict or is_typeddict(tp):
        return lambda v: isinstance(v, dict)
    cls = origin if isinstance(origin, type) else tp  # Range[int] is checked as a Range
    structured = is_structured(cls)
    if isinstance(cls, type) and (issubclass(cls, enum.Enum) or _dumpable(cls) or structured):
        return lambda v: isinstance(v, cls)
    msg = (
        f"{stub}: parameter {name!r} is annotated {describe(tp)}, which pgdecor cannot send to PostgreSQL; "
        f"use a scalar type (int, str, Decimal, datetime, ...), an Enum, a dataclass, a dict, a list of those, "
        f"or a type psycopg can adapt"
    )
    raise SignatureError(msg)


def _dumpable(tp: type) -> bool:
    try:
        adapters.get_dumper(tp, PyFormat.AUTO)
    except Exception:  # noqa: BLE001 - see _format_for
        return False
    return True


def read_params(stub: str, sig: inspect.Signature, hints: dict[str, Any], *, receiver: bool) -> tuple[Param, ...]:
    """The stub's parameters, from its signature and resolved annotations (*receiver*: the first is ``self`` or
    ``cls``, passed along unchecked)."""
    return tuple(
        receiver_param(p.name) if i == 0 and receiver else make_param(stub, p, hints[p.name])
        for i, p in enumerate(sig.parameters.values())
    )
