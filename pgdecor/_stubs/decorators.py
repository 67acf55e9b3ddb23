"""`procedure` and `query`: read a stub once, check what it declares, and make it a `Stub` whose plan calls the
function it names or runs the SQL it gives."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar, overload

from typing_extensions import LiteralString, ParamSpec

from pgdecor._annotations import qualified_name
from pgdecor._errors import SignatureError
from pgdecor._limits.deadlines import seconds_given
from pgdecor._limits.slow import slow_threshold
from pgdecor._plan.params import read_params
from pgdecor._plan.plan import ErrorMap, Plan
from pgdecor._plan.procedure import function_name, procedure_call
from pgdecor._plan.query import QueryCall, query_pieces, query_slots
from pgdecor._plan.results import read_result

from .signature import signature_of
from .stub import Stub, make_stub

__all__ = ["procedure", "query"]

P = ParamSpec("P")
R = TypeVar("R")


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
    parts = function_name(stub, function)

    def plan(hints: dict[str, Any]) -> Plan:
        params = read_params(stub, sig, hints, receiver=receiver is not None)
        is_async = _is_async(fn, hints)
        result = read_result(stub, hints["return"], is_async=is_async)
        call = procedure_call(stub, parts, sig, params, result, receiver=receiver)
        return Plan(
            stub,
            f"function {function}",
            call,
            params,
            result,
            is_async,
            errors,
            readonly,
            autocommit=autocommit,
            slow=slow,
            timeout=timeout,
        )

    return make_stub(fn, sig, tuple(sig.parameters), plan)


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
    pieces = query_pieces(stub, text, sig, receiver=receiver)

    def plan(hints: dict[str, Any]) -> Plan:
        params = read_params(stub, sig, hints, receiver=receiver is not None)
        slots = query_slots(stub, pieces, params, receiver=receiver is not None)
        is_async = _is_async(fn, hints)
        result = read_result(stub, hints["return"], is_async=is_async)
        return Plan(
            stub,
            "the query",
            QueryCall(stub, slots, len(params)),
            params,
            result,
            is_async,
            errors,
            readonly,
            slow=slow,
            timeout=timeout,
        )

    return make_stub(fn, sig, tuple(sig.parameters), plan)


def _is_async(fn: Callable[..., Any], hints: dict[str, Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    origin = typing.get_origin(hints["return"])
    return origin is not None and getattr(origin, "__name__", "").startswith("Async")
