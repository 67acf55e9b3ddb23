"""A stub's parameters: read once from its signature, checked cheaply on every call.

The callable a decorator returns is generated here from the stub's own parameter list, so Python itself binds
positional and keyword arguments, applies defaults and words the errors for missing or extra arguments. The
generated function packs the arguments into a tuple, in SQL order, and hands it to the plan's runner.
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
from types import CodeType
from typing import Any, Literal, NoReturn

from psycopg import adapters
from psycopg.adapt import PyFormat
from typing_extensions import is_typeddict

from pgdecor._annotations import bare, describe, is_structured, split_optional
from pgdecor._codegen import define, named
from pgdecor._errors import ArgumentError, SignatureError
from pgdecor._rows.json_dump import text_problem

Check = Callable[[Any], bool]

_RESERVED_PREFIX = "_pgdecor_"


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


Receiver = Literal["self", "cls"] | None


#: What a stub's body may be, compiled by this interpreter: nothing runs it, so anything else would be ignored.
_EMPTY_BODIES = tuple(
    f"def f():\n    {doc}{body}"
    for doc in ("", "'doc'\n    ")
    for body in ("...", "raise NotImplementedError", "raise NotImplementedError()")
)
_BODIES: dict[bool, frozenset[tuple[bytes, tuple[str, ...], tuple[Any, ...]]]] = {}


def _check_body(fn: Callable[..., Any], stub: str) -> None:
    """Raise `SignatureError` unless *fn*'s body is ``...``, ``pass``, a docstring or ``raise
    NotImplementedError``: pgdecor calls the SQL instead, and never runs it."""
    target = inspect.unwrap(fn)
    code = getattr(target, "__code__", None)
    if code is None:
        return
    is_async = bool(code.co_flags & inspect.CO_COROUTINE)
    bodies = _BODIES.get(is_async)
    if bodies is None:
        bodies = _BODIES[is_async] = frozenset(_compiled(src, is_async=is_async) for src in _EMPTY_BODIES)
    if _body(code, target.__doc__) not in bodies:
        msg = (
            f"{stub}: the stub has a body, which would never run (pgdecor runs the SQL in its place); write `...` "
            f"(or a docstring, or `raise NotImplementedError`) as its body, and put other code in a function that "
            f"calls the stub"
        )
        raise SignatureError(msg)


def _compiled(source: str, *, is_async: bool) -> tuple[bytes, tuple[str, ...], tuple[Any, ...]]:
    namespace: dict[str, Any] = {}
    exec(compile(("async " if is_async else "") + source, "<pgdecor stub body>", "exec"), namespace)  # noqa: S102 - fixed text
    return _body(namespace["f"].__code__, namespace["f"].__doc__)


def _body(code: CodeType, doc: str | None) -> tuple[bytes, tuple[str, ...], tuple[Any, ...]]:
    """What a body does: its instructions, the names and the constants they use (the docstring as any)."""
    consts = tuple("" if i == 0 and doc is not None and c == doc else c for i, c in enumerate(code.co_consts))
    return code.co_code, code.co_names, consts


def signature_of(fn: Callable[..., Any], stub: str, *, variadic: bool) -> tuple[inspect.Signature, Receiver]:
    """The stub's signature, rejecting what cannot map onto SQL arguments, and whether it is a method.

    A method's first parameter, unannotated ``self`` (or ``cls``), is not an SQL argument; function arguments
    the stub does not declare are then taken from the instance's attributes of the same name.
    """
    _check_body(fn, stub)
    sig = inspect.signature(fn)
    receiver: Receiver = None
    first = next(iter(sig.parameters.values()), None)
    in_class = "." in fn.__qualname__.rsplit("<locals>.", 1)[-1]
    if first is not None and in_class and first.name in ("self", "cls") and first.annotation is first.empty:
        receiver = "self" if first.name == "self" else "cls"
    for i, p in enumerate(sig.parameters.values()):
        if i == 0 and receiver is not None:
            continue
        if p.kind is p.VAR_KEYWORD or (p.kind is p.VAR_POSITIONAL and not variadic):
            kind = "*" if p.kind is p.VAR_POSITIONAL else "**"
            msg = (
                f"{stub}: parameter {kind}{p.name} cannot be mapped onto a SQL argument; "
                f"declare each argument as a named parameter"
                + ("" if variadic else " (only @procedure maps *args, onto a VARIADIC argument)")
            )
            raise SignatureError(msg)
        if p.annotation is inspect.Parameter.empty:
            msg = f"{stub}: parameter {p.name!r} has no annotation; annotate it (e.g. `{p.name}: int`)"
            raise SignatureError(msg)
        if p.name.startswith(_RESERVED_PREFIX):
            msg = f"{stub}: parameter {p.name!r} uses the prefix {_RESERVED_PREFIX!r} reserved by pgdecor; rename it"
            raise SignatureError(msg)
    if sig.return_annotation is inspect.Signature.empty:
        msg = f"{stub}: no return annotation; annotate what the call returns (e.g. `-> User | None`, or `-> None`)"
        raise SignatureError(msg)
    return sig, receiver


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


def make_caller(
    fn: Callable[..., Any],
    sig: inspect.Signature,
    order: tuple[str, ...],
    target: Callable[..., Any],
    *,
    sync: bool = False,
) -> Callable[..., Any]:
    """Compile a function with *fn*'s exact parameter list that calls ``target(tuple_of_args_in_order)``.

    The target can be swapped later with `set_target` (used when annotations resolve at first call). With
    *sync*, the function is a plain ``def`` even when *fn* is ``async def``.
    """
    params: list[str] = []
    defaults: dict[str, Any] = {}
    seen_kw_only = False
    last_positional_only = None
    for i, p in enumerate(sig.parameters.values()):
        if p.kind is p.KEYWORD_ONLY and not seen_kw_only:
            params.append("*")
            seen_kw_only = True
        if p.kind is p.VAR_POSITIONAL:
            seen_kw_only = True
        text = "*" + p.name if p.kind is p.VAR_POSITIONAL else p.name
        if p.default is not p.empty:
            key = f"{_RESERVED_PREFIX}d{i}"
            defaults[key] = p.default
            text += f"={key}"
        params.append(text)
        if p.kind is p.POSITIONAL_ONLY:
            last_positional_only = len(params)
    if last_positional_only is not None:
        params.insert(last_positional_only, "/")
    is_async = inspect.iscoroutinefunction(fn) and not sync
    packed = "".join(f"{n}, " for n in order)
    run = f"{_RESERVED_PREFIX}run"
    body = f"return await {run}(({packed}))" if is_async else f"return {run}(({packed}))"
    outer_args = ", ".join([run, *defaults])
    src = (
        f"def {_RESERVED_PREFIX}make({outer_args}):\n"
        f"    {'async ' if is_async else ''}def stub({', '.join(params)}):\n"
        f"        {body}\n"
        f"    return stub\n"
    )
    make = define(src, f"{_RESERVED_PREFIX}make", "caller")
    caller: Callable[..., Any] = make(target, *defaults.values())
    named(caller, fn.__name__, fn.__qualname__, f"{fn.__module__}.{fn.__qualname__}", "caller")
    caller.__name__ = fn.__name__
    caller.__qualname__ = fn.__qualname__
    caller.__module__ = fn.__module__
    caller.__doc__ = fn.__doc__
    caller.__wrapped__ = fn  # type: ignore[attr-defined]
    return caller


def set_target(caller: Callable[..., Any], target: Callable[..., Any]) -> None:
    """Point a generated caller at a new target."""
    index = caller.__code__.co_freevars.index(f"{_RESERVED_PREFIX}run")
    closure = caller.__closure__
    assert closure is not None
    closure[index].cell_contents = target
