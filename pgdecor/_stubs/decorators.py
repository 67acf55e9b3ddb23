"""`procedure` and `query`: read a stub once, build its plan, return a callable with the stub's signature."""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, Concatenate, Protocol, TypeVar, overload

from typing_extensions import LiteralString, ParamSpec

from pgdecor._annotations import qualified_name
from pgdecor._errors import ArgumentError, SignatureError
from pgdecor._limits.deadlines import seconds_given
from pgdecor._limits.slow import slow_threshold
from pgdecor._plan.calls import ProcedureCall, QueryCall, Slot, Statement
from pgdecor._plan.catalog import StubParam
from pgdecor._plan.plan import ErrorMap, Plan
from pgdecor._plan.results import Shape, read_result
from pgdecor._plan.signature import (
    DEFAULT,
    Param,
    Receiver,
    arg_name,
    make_caller,
    make_param,
    receiver_param,
    set_target,
    signature_of,
)
from pgdecor._run.runner import Runner
from pgdecor._run.runner_async import AsyncRunner

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
R2 = TypeVar("R2")
S = TypeVar("S")
T = TypeVar("T")
R_co = TypeVar("R_co", covariant=True)


class Stub(Protocol[P, R_co]):
    """What `procedure` and `query` return: the stub's own signature, plus what pgdecor made of it."""

    #: The SQL sent on each call (psycopg placeholders); None until a forward reference resolves.
    sql: str | None
    __name__: str
    __qualname__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    # A stub defined in a class is a method: read from an instance, it binds it, as a function does (the mypy
    # plugin keeps such stubs' function types instead; pyright and others read this).
    @overload
    def __get__(self, instance: None, owner: type[Any], /) -> Stub[P, R_co]: ...
    @overload
    def __get__(self: Stub[Concatenate[S, P2], R2], instance: S, owner: type[Any], /) -> Stub[P2, R2]: ...
    def __get__(self, instance: Any, owner: type[Any], /) -> Any: ...

    # The overlaps are the point: the first overload that matches the stub's return type decides.
    @overload
    def many(  # type: ignore[overload-overlap]
        self: Stub[..., Awaitable[None]], argsets: Iterable[ArgSet], /
    ) -> Coroutine[Any, Any, None]: ...
    @overload
    def many(  # type: ignore[overload-overlap]
        self: Stub[..., Awaitable[T]], argsets: Iterable[ArgSet], /
    ) -> Coroutine[Any, Any, list[T]]: ...
    @overload
    def many(self: Stub[..., None], argsets: Iterable[ArgSet], /) -> None: ...  # type: ignore[overload-overlap]
    @overload
    def many(self: Stub[..., T], argsets: Iterable[ArgSet], /) -> list[T]: ...
    def many(self, argsets: Iterable[ArgSet], /) -> Any:
        """Call the stub once per argument set, in one round trip (pipelined); return the results in order.

        Each argument set is a tuple of positional arguments or a mapping of keyword arguments, bound as a
        call would bind them. A stub returning None returns None.
        """


#: One call's arguments for `Stub.many`: positional ones as a tuple, or keyword ones as a mapping.
ArgSet = tuple[Any, ...] | Mapping[str, Any]


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
def procedure(
    name: str | None = None,
    /,
    *,
    errors: ErrorMap | None = None,
    readonly: bool = False,
    autocommit: bool = False,
    slow: float | None = None,
    timeout: float | None = None,
) -> _Decorator: ...
def procedure(
    arg: Callable[P, R] | str | None = None,
    /,
    *,
    errors: ErrorMap | None = None,
    readonly: bool = False,
    autocommit: bool = False,
    slow: float | None = None,
    timeout: float | None = None,
) -> Stub[P, R] | _Decorator:
    """Turn a typed stub into a call of the stored function or procedure of the same name (or the one named).

    At its first call on a server, the stub is resolved against the catalog: a procedure is called with
    ``CALL``, a function with ``SELECT``; arguments are passed by name (or by position, for functions whose
    parameters are unnamed), each cast to the type the function declares, which also picks the overload::

        @procedure
        def get_user(id: int) -> User | None: ...

        @procedure("app.users_by_domain")
        def users_by_domain(domain: str, limit: int = 100) -> list[User]: ...

    A part of the name that has a ``.`` is written in double quotes, as SQL writes it (``'app."welcome.html"'``);
    a parameter annotated ``Annotated[int, Arg("from")]`` passes the argument ``from``, which Python cannot name.

    *errors* maps SQLSTATEs to the exceptions to raise instead of psycopg's (each is called with a message):
    ``@procedure(errors={"P0002": NotFoundError})``: such a call runs in a savepoint of its own, undone alone when
    it raises one of them, so that code catching it can still commit the rest of its session. A *readonly* stub
    may run on the session's replica.

    *autocommit* declares a procedure that ends transactions itself (``COMMIT`` or ``ROLLBACK`` in its body),
    which PostgreSQL allows only outside a transaction block: the stub is called in a
    ``session(..., autocommit=True)``, outside `transaction`; elsewhere it raises `NoSessionError` before sending
    anything, and the session's transaction goes on unharmed.

    *slow*: seconds above which a call is logged (WARNING) and counted as slow, in place of the database's
    ``Database(slow_call=...)`` for this stub.

    *timeout*: seconds a call is given (the server's ``statement_timeout`` for its statement, set for it alone);
    one that runs longer is stopped and raises `DeadlineError`, as does one left less time by its session's
    ``deadline=``.
    """
    if callable(arg):
        return _build_procedure(arg, None, {}, readonly=False, autocommit=False)  # type: ignore[return-value]
    if arg is not None and not isinstance(arg, str):
        msg = f"@procedure takes a function name as a string, not {type(arg).__qualname__}"
        raise SignatureError(msg)
    if not isinstance(autocommit, bool):
        msg = f"@procedure(autocommit=...) takes True or False, not {autocommit!r}"
        raise SignatureError(msg)
    name, error_map, threshold = arg, _error_map("@procedure", errors), slow_threshold("@procedure(slow=...)", slow)
    return _Decorator(
        lambda fn: _build_procedure(
            fn,
            name,
            error_map,
            readonly=readonly,
            autocommit=autocommit,
            slow=threshold,
            timeout=_timeout("@procedure", fn, timeout),
        )
    )


def query(
    sql: LiteralString,
    /,
    *,
    errors: ErrorMap | None = None,
    readonly: bool = False,
    slow: float | None = None,
    timeout: float | None = None,
) -> _Decorator:
    """Turn a typed stub into a call of the given SQL, with ``%(name)s`` placeholders bound from its parameters.

    Every placeholder must name a parameter, and every parameter must be used::

        @query("UPDATE app.users SET email = %(email)s WHERE id = %(id)s")
        def set_email(id: int, email: str | None) -> None: ...

    In a method stub, a placeholder that names no parameter takes the instance's attribute of that name. A
    *readonly* stub may run on the session's replica. *slow* and *timeout*: as for `procedure`.
    """
    if not isinstance(sql, str):
        msg = f"@query takes the SQL text as a string, not {type(sql).__qualname__}"
        raise SignatureError(msg)
    error_map, threshold = _error_map("@query", errors), slow_threshold("@query(slow=...)", slow)
    return _Decorator(
        lambda fn: _build_query(
            fn, sql, error_map, readonly=readonly, slow=threshold, timeout=_timeout("@query", fn, timeout)
        )
    )


def _timeout(where: str, fn: Callable[..., Any], timeout: object) -> float | None:
    """A stub's ``timeout=``, checked when it is decorated (the message names it)."""
    return seconds_given(f"{qualified_name(fn)}: {where}(timeout=...)", timeout, SignatureError)


def _error_map(where: str, errors: ErrorMap | None) -> ErrorMap:
    for state, exc in (errors or {}).items():
        if not (len(state) == 5 and state.isalnum() and state.upper() == state):
            msg = f"{where}(errors=...): {state!r} is not a SQLSTATE (five characters, e.g. 'P0002' or '23505')"
            raise SignatureError(msg)
        if not callable(exc):
            msg = f"{where}(errors=...): the value for {state!r} must be an exception class, not {exc!r}"
            raise SignatureError(msg)
    return dict(errors or {})


# -- building ----------------------------------------------------------------------------------------------------


def _build_procedure(
    fn: Callable[..., Any],
    name: str | None,
    errors: ErrorMap,
    *,
    readonly: bool,
    autocommit: bool,
    slow: float | None = None,
    timeout: float | None = None,
) -> Stub[..., Any]:
    stub = qualified_name(fn)
    sig, receiver = signature_of(fn, stub, variadic=True)
    function = name or fn.__name__
    parts = split_name(function)
    if parts is None or not 1 <= len(parts) <= 2 or not all(parts):
        msg = (
            f"{stub}: {function!r} is not a function name; write 'name' or 'schema.name', with a part that has a "
            f"'.' in double quotes (as SQL quotes it: 'app.\"welcome.html\"')"
        )
        raise SignatureError(msg)
    order = tuple(sig.parameters)
    offset = 1 if receiver else 0

    def plan(hints: dict[str, Any], published: Callable[[Statement], None]) -> Plan:
        params = _params(stub, sig, receiver, hints)
        result = read_result(stub, hints["return"], is_async=_is_async(fn, hints))
        call = ProcedureCall(
            stub,
            parts,
            _stub_params(stub, params[offset:]),
            result,
            has_self=receiver == "self",
            offset=offset,
            defaults=tuple(i for i, p in enumerate(sig.parameters.values()) if p.default is DEFAULT),
        )
        is_async = _is_async(fn, hints)
        return Plan(
            stub,
            f"function {function}",
            call,
            params,
            result,
            is_async,
            errors,
            readonly,
            on_statement=published,
            autocommit=autocommit,
            slow=slow,
            timeout=timeout,
        )

    return _finish(fn, sig, order, plan)


#: One part of a function's name: in double quotes (``""`` a quote), or up to the next ``.``.
_NAME_PART = re.compile(r'"((?:[^"]|"")*)"|([^".][^.]*|)')


def split_name(text: str) -> tuple[str, ...] | None:
    """The parts of a function's name, ``schema.name``, as SQL quotes them: a part beginning with a double quote
    ends at the next lone one (``app."welcome.html"``); any other at the next ``.``. None if *text* cannot be
    read so (an unclosed quote)."""
    parts: list[str] = []
    pos = 0
    while True:
        m = _NAME_PART.match(text, pos)
        assert m is not None  # the second alternative matches the empty string
        quoted, plain = m.groups()
        parts.append(quoted.replace('""', '"') if quoted is not None else plain)
        pos = m.end()
        if pos == len(text):
            return tuple(parts)
        if text[pos] != ".":
            return None
        pos += 1


def _stub_params(stub: str, params: tuple[Param, ...]) -> list[StubParam]:
    """The parameters as resolution sees them, each named after the argument it passes: its own name, or the one
    its `Arg` gives."""
    names: dict[str, str] = {}
    for p in params:
        name = arg_name(p.annotation) or p.name
        if name in names:
            msg = (
                f"{stub}: parameters {names[name]!r} and {p.name!r} both pass the argument {name!r}; give each "
                f'parameter the argument it passes (`Annotated[T, Arg("name")]`)'
            )
            raise SignatureError(msg)
        names[name] = p.name
    return [StubParam(name, p.annotation, p.variadic) for name, p in zip(names, params, strict=True)]


_PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?(?P<format>.?)", re.DOTALL)
#: A positional placeholder of PostgreSQL's own (``$1``), as SQL written for other drivers has.
_DOLLAR = re.compile(r"(?<![\w$])\$[1-9][0-9]*(?![\w$])")


def _build_query(
    fn: Callable[..., Any],
    text: str,
    errors: ErrorMap,
    *,
    readonly: bool,
    slow: float | None = None,
    timeout: float | None = None,
) -> Stub[..., Any]:
    stub = qualified_name(fn)
    sig, receiver = signature_of(fn, stub, variadic=False)
    names = list(sig.parameters)[1 if receiver else 0 :]
    if any(p.default is DEFAULT for p in sig.parameters.values()):
        msg = f"{stub}: DEFAULT leaves an argument to a function's own default; it has no meaning in @query SQL"
        raise SignatureError(msg)
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
        if name not in names and receiver != "self":
            msg = (
                f"{stub}: @query SQL uses %({name})s but the stub has no parameter {name!r}; "
                f"add the parameter or fix the placeholder (parameters: {', '.join(names) or 'none'})"
            )
            raise SignatureError(msg)
        pieces.append((name, fmt))
    pieces.append(text[pos:])
    used = {p[0] for p in pieces if isinstance(p, tuple)}
    unused = [n for n in names if n not in used]
    if unused:
        dollar = _DOLLAR.search(text)
        if dollar is not None:
            msg = (
                f"{stub}: @query SQL uses the placeholder {dollar.group()}, which pgdecor does not bind: it binds "
                f"parameters by name; write %({unused[0]})s where the SQL means parameter {unused[0]!r}"
            )
            raise SignatureError(msg)
        msg = (
            f"{stub}: parameter {unused[0]!r} is not used by the @query SQL; "
            f"add %({unused[0]})s to the SQL or remove the parameter"
        )
        raise SignatureError(msg)
    order = tuple(sig.parameters)

    def plan(hints: dict[str, Any], published: Callable[[Statement], None]) -> Plan:
        params = _params(stub, sig, receiver, hints)
        for p in params:
            named = arg_name(p.annotation)
            if named is not None:
                msg = (
                    f"{stub}: parameter {p.name!r} is annotated Arg({named!r}), which names a function's argument; "
                    f"@query SQL names its placeholders after the parameters: write %({p.name})s and drop the Arg"
                )
                raise SignatureError(msg)
        by_name = {p.name: (i, p) for i, p in enumerate(params) if p.name in names}
        slots: list[str | Slot] = []
        for piece in pieces:
            if isinstance(piece, str):
                slots.append(piece)
                continue
            name, fmt = piece
            if name in by_name:
                index, param = by_name[name]
                slots.append(Slot(index, param.annotation, name, param.format if fmt == "s" else fmt))
            else:  # an attribute of self
                slots.append(Slot(name, Any, name, fmt))
        result = read_result(stub, hints["return"], is_async=_is_async(fn, hints))
        call = QueryCall(stub, slots, len(params))
        is_async = _is_async(fn, hints)
        return Plan(
            stub,
            "the query",
            call,
            params,
            result,
            is_async,
            errors,
            readonly,
            on_statement=published,
            slow=slow,
            timeout=timeout,
        )

    return _finish(fn, sig, order, plan)


def _params(stub: str, sig: inspect.Signature, receiver: Receiver, hints: dict[str, Any]) -> tuple[Param, ...]:
    return tuple(
        receiver_param(p.name) if i == 0 and receiver else make_param(stub, p, hints[p.name])
        for i, p in enumerate(sig.parameters.values())
    )


def _is_async(fn: Callable[..., Any], hints: dict[str, Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    origin = typing.get_origin(hints["return"])
    return origin is not None and getattr(origin, "__name__", "").startswith("Async")


def _finish(
    fn: Callable[..., Any],
    sig: inspect.Signature,
    order: tuple[str, ...],
    build: Callable[[dict[str, Any], Callable[[Statement], None]], Plan],
) -> Stub[..., Any]:
    """Build the plan now if the annotations resolve, else at the first call; return the generated caller."""
    stub = qualified_name(fn)

    def target(runner: Runner | AsyncRunner) -> Callable[[tuple[Any, ...]], Any]:
        stream = runner.plan.result.shape is Shape.STREAM
        if isinstance(runner, AsyncRunner) and stream and not inspect.iscoroutinefunction(fn):
            return runner.stream  # `def f() -> AsyncIterator[T]`: runs at the first anext
        return runner.call

    def publish(statement: Statement) -> None:  # the stub's `.sql`: the statement composed last
        caller.sql = statement.sql  # type: ignore[attr-defined]

    def current_runner(hints: dict[str, Any] | None = None) -> Runner | AsyncRunner:
        runner: Runner | AsyncRunner | None = getattr(caller, "runner", None)
        if runner is None:
            hints = hints or _hints(fn, stub, strict=True)
            assert hints is not None
            plan = build(hints, publish)
            runner = AsyncRunner(plan) if plan.is_async else Runner(plan)
            set_target(caller, target(runner))
            caller.plan = plan  # type: ignore[attr-defined]
            caller.runner = runner  # type: ignore[attr-defined]
            caller.sql = plan.call.statement.sql if isinstance(plan.call, QueryCall) else None  # type: ignore[attr-defined]
        return runner

    def current_plan() -> Plan:
        return current_runner().plan

    @functools.cache
    def packer() -> Callable[..., tuple[Any, ...]]:  # made at the first many(): most stubs never need it
        return make_caller(fn, sig, order, lambda args: args, sync=True)

    # A tuple of one value per parameter binds as itself when every parameter is positional with no default.
    plain = order == tuple(sig.parameters) and all(
        p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in sig.parameters.values()
    )
    arity = len(order)

    def many(argsets: Iterable[ArgSet], /) -> Any:
        pack = packer()
        packed = [
            a if plain and type(a) is tuple and len(a) == arity else _bind_one(stub, pack, i, a)
            for i, a in enumerate(argsets)
        ]
        runner = current_runner()
        if runner.plan.result.shape is Shape.STREAM:
            msg = f"{stub}.many(): a stub returning a stream has no batch form; annotate it `-> list[...]`"
            raise ArgumentError(msg)
        return runner.many(packed)

    # Until the plan exists (annotations naming a class defined later), the caller's target builds it first.
    def first_call(args: tuple[Any, ...]) -> Any:
        return target(current_runner())(args)

    caller = make_caller(fn, sig, order, first_call)
    caller.sql = None  # type: ignore[attr-defined]
    caller.many = many  # type: ignore[attr-defined]
    caller.__pgdecor_plan__ = current_plan  # type: ignore[attr-defined]  # how `pgdecor check` finds stubs
    hints = _hints(fn, stub)
    if hints is not None:
        current_runner(hints)
    return caller  # type: ignore[return-value]


def _bind_one(stub: str, pack: Callable[..., tuple[Any, ...]], index: int, argset: Any) -> tuple[Any, ...]:
    if isinstance(argset, tuple):
        return pack(*argset)
    if isinstance(argset, Mapping):
        return pack(**argset)
    msg = (
        f"{stub}.many(): argument set {index} is a {type(argset).__qualname__}; pass each call's arguments as a "
        f"tuple of positional arguments (`(1,)` for one argument) or a dict of keyword arguments"
    )
    raise ArgumentError(msg)


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
