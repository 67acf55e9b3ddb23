"""`procedure` and `query`: read a stub once, build its plan, return a callable with the stub's signature."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, overload

from psycopg import sql as pgsql
from typing_extensions import LiteralString, ParamSpec

from ._annotations import qualified_name
from ._errors import SignatureError
from ._plan import Plan
from ._results import Shape, read_result
from ._signature import make_caller, make_param, set_target, signature_of

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class Stub(Protocol[P, R_co]):
    """What `procedure` and `query` return: the stub's own signature, plus what pgdecor made of it."""

    #: The SQL sent on each call (psycopg placeholders); None until a forward reference resolves.
    sql: str | None
    __name__: str
    __qualname__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


class _Decorator:
    """The decorator returned by ``@procedure("name")`` and ``@query(sql)``."""

    __slots__ = ("_build",)

    def __init__(self, build: Callable[[Callable[..., Any]], Stub[..., Any]]) -> None:
        self._build = build

    def __call__(self, fn: Callable[P, R], /) -> Stub[P, R]:
        return self._build(fn)  # type: ignore[return-value]


@overload
def procedure(fn: Callable[P, R], /) -> Stub[P, R]: ...
@overload
def procedure(name: str | None = None, /) -> _Decorator: ...
def procedure(arg: Callable[P, R] | str | None = None, /) -> Stub[P, R] | _Decorator:
    """Turn a typed stub into a call of the stored function of the same name (or the one named).

    The arguments are passed by name (``f(id => $1)``), so the stub's parameter names must match the
    function's. A function returning rows is called as ``SELECT * FROM f(...)``; one returning a scalar as
    ``SELECT f(...)``::

        @procedure
        def get_user(id: int) -> User | None: ...

        @procedure("app.users_by_domain")
        def users_by_domain(domain: str, limit: int = 100) -> list[User]: ...
    """
    if callable(arg):
        return _build_procedure(arg, None)  # type: ignore[return-value]
    if arg is not None and not isinstance(arg, str):
        msg = f"@procedure takes a function name as a string, not {type(arg).__qualname__}"
        raise SignatureError(msg)
    name = arg
    return _Decorator(lambda fn: _build_procedure(fn, name))


def query(sql: LiteralString, /) -> _Decorator:
    """Turn a typed stub into a call of the given SQL, with ``%(name)s`` placeholders bound from its parameters.

    Every placeholder must name a parameter, and every parameter must be used::

        @query("UPDATE app.users SET email = %(email)s WHERE id = %(id)s")
        def set_email(id: int, email: str | None) -> None: ...
    """
    if not isinstance(sql, str):
        msg = f"@query takes the SQL text as a string, not {type(sql).__qualname__}"
        raise SignatureError(msg)
    return _Decorator(lambda fn: _build_query(fn, sql))


# -- building ----------------------------------------------------------------------------------------------------


def _build_procedure(fn: Callable[..., Any], name: str | None) -> Stub[..., Any]:
    stub = qualified_name(fn)
    sig = signature_of(fn, stub)
    function = name or fn.__name__
    parts = function.split(".")
    if not 1 <= len(parts) <= 2 or not all(parts):
        msg = f"{stub}: {function!r} is not a function name; write 'name' or 'schema.name'"
        raise SignatureError(msg)
    ident = pgsql.Identifier(*parts)
    order = tuple(sig.parameters)

    def plan(hints: dict[str, Any]) -> Plan:
        params = tuple(make_param(stub, n, hints[n]) for n in order)
        result = read_result(stub, hints["return"], is_async=_is_async(fn, hints))
        args = pgsql.SQL(", ").join(
            pgsql.SQL("{} => {}").format(pgsql.Identifier(p.name), pgsql.Placeholder(format=p.format)) for p in params
        )
        call = pgsql.SQL("{}({})").format(ident, args)
        template = "SELECT * FROM {}" if result.shape is not Shape.NONE and not result.scalar else "SELECT {}"
        text = pgsql.SQL(template).format(call).as_string()
        return Plan(stub, f"function {function}", text, params, result, _is_async(fn, hints), function=function)

    return _finish(fn, sig, order, plan)


_PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?(?P<format>.?)", re.DOTALL)


def _build_query(fn: Callable[..., Any], text: str) -> Stub[..., Any]:
    stub = qualified_name(fn)
    sig = signature_of(fn, stub)
    pieces: list[str | tuple[str, str]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        pieces.append(text[pos : m.start()])
        pos = m.end()
        name, fmt = m.group("name"), m.group("format")
        if name is None and fmt == "%":
            pieces.append("%%")
            continue
        if name is None or fmt not in ("s", "b", "t"):
            msg = (
                f"{stub}: placeholder {m.group()!r} in @query SQL is not of the form %(name)s; "
                f"name each placeholder after a parameter, and write a literal % as %%"
            )
            raise SignatureError(msg)
        if name not in sig.parameters:
            msg = (
                f"{stub}: @query SQL uses %({name})s but the stub has no parameter {name!r}; "
                f"add the parameter or fix the placeholder (parameters: {', '.join(sig.parameters) or 'none'})"
            )
            raise SignatureError(msg)
        pieces.append((name, fmt))
    pieces.append(text[pos:])
    used = {p[0] for p in pieces if isinstance(p, tuple)}
    unused = [n for n in sig.parameters if n not in used]
    if unused:
        msg = (
            f"{stub}: parameter {unused[0]!r} is not used by the @query SQL; "
            f"add %({unused[0]})s to the SQL or remove the parameter"
        )
        raise SignatureError(msg)
    order = tuple(p[0] for p in pieces if isinstance(p, tuple))

    def plan(hints: dict[str, Any]) -> Plan:
        by_name = {n: make_param(stub, n, hints[n]) for n in sig.parameters}
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, str):
                out.append(piece)
            else:
                name, fmt = piece
                out.append(f"%{by_name[name].format if fmt == 's' else fmt}")
        params = tuple(by_name[n] for n in order)
        result = read_result(stub, hints["return"], is_async=_is_async(fn, hints))
        return Plan(stub, "the query", "".join(out), params, result, _is_async(fn, hints))

    return _finish(fn, sig, order, plan)


def _is_async(fn: Callable[..., Any], hints: dict[str, Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    origin = typing.get_origin(hints["return"])
    return origin is not None and getattr(origin, "__name__", "").startswith("Async")


def _finish(
    fn: Callable[..., Any],
    sig: inspect.Signature,
    order: tuple[str, ...],
    build: Callable[[dict[str, Any]], Plan],
) -> Stub[..., Any]:
    """Build the plan now if the annotations resolve, else at the first call; return the generated caller."""
    stub = qualified_name(fn)

    def runner_for(plan: Plan) -> Callable[[tuple[Any, ...]], Any]:
        if plan.result.shape is Shape.STREAM and plan.is_async and not inspect.iscoroutinefunction(fn):
            return plan.stream
        return plan.arun if plan.is_async else plan.run

    hints = _hints(fn, stub)
    if hints is not None:
        plan = build(hints)
        caller = make_caller(fn, sig, order, runner_for(plan))
        _expose(caller, plan)
        return caller  # type: ignore[return-value]

    def first_call(args: tuple[Any, ...]) -> Any:
        resolved = _hints(fn, stub, strict=True)
        assert resolved is not None
        plan = build(resolved)
        runner = runner_for(plan)
        set_target(caller, runner)
        _expose(caller, plan)
        return runner(args)

    caller = make_caller(fn, sig, order, first_call)
    caller.sql = None  # type: ignore[attr-defined]
    return caller  # type: ignore[return-value]


def _expose(caller: Any, plan: Plan) -> None:
    caller.sql = plan.sql
    caller.plan = plan


def _hints(fn: Callable[..., Any], stub: str, *, strict: bool = False) -> dict[str, Any] | None:
    """The stub's resolved annotations, or None while a forward reference cannot be resolved yet."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except NameError as err:
        if strict:
            msg = (
                f"{stub}: annotation {err.name!r} cannot be resolved; "
                f"define or import it at module level in {fn.__module__}"
            )
            raise SignatureError(msg) from err
        return None
