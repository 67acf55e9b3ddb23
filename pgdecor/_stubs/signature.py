"""A stub's definition, read once: its signature (what cannot map onto SQL arguments rejected, a method's
``self`` or ``cls`` told apart), its body (which must be empty: pgdecor runs the SQL in its place), and its
annotations, resolved now or, while a forward reference cannot be, later.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from types import CodeType
from typing import Any, Literal

from pgdecor._errors import SignatureError

from .caller import RESERVED_PREFIX

__all__ = ["Receiver", "hints_of", "signature_of"]

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
        if p.name.startswith(RESERVED_PREFIX):
            msg = f"{stub}: parameter {p.name!r} uses the prefix {RESERVED_PREFIX!r} reserved by pgdecor; rename it"
            raise SignatureError(msg)
    if sig.return_annotation is inspect.Signature.empty:
        msg = f"{stub}: no return annotation; annotate what the call returns (e.g. `-> User | None`, or `-> None`)"
        raise SignatureError(msg)
    return sig, receiver


def hints_of(fn: Callable[..., Any], stub: str, *, strict: bool = False) -> dict[str, Any] | None:
    """The stub's resolved annotations, or None while a forward reference cannot be resolved yet (unless
    *strict*: then `SignatureError` names it)."""
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
