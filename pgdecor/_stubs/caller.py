"""The callable a decorator returns, compiled from the stub's own parameter list: Python itself binds positional
and keyword arguments, applies defaults and words the errors for missing or extra arguments. The compiled function
packs the arguments into a tuple, in the order given, and hands it to its target (a runner's, once the plan is
made), which `set_target` can swap. A decorator returns it inside a `Compiled`, whose class can give the stub
attributes computed when they are read.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import MethodType
from typing import Any, TypeVar

from pgdecor._codegen import define, named

__all__ = ["RESERVED_PREFIX", "Compiled", "compiled", "make_caller", "set_target"]

C = TypeVar("C", bound="Compiled")

#: The prefix of the names compiled callers use for themselves: a stub's parameters may not begin with it.
RESERVED_PREFIX = "_pgdecor_"


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
            key = f"{RESERVED_PREFIX}d{i}"
            defaults[key] = p.default
            text += f"={key}"
        params.append(text)
        if p.kind is p.POSITIONAL_ONLY:
            last_positional_only = len(params)
    if last_positional_only is not None:
        params.insert(last_positional_only, "/")
    is_async = inspect.iscoroutinefunction(fn) and not sync
    packed = "".join(f"{n}, " for n in order)
    run = f"{RESERVED_PREFIX}run"
    body = f"return await {run}(({packed}))" if is_async else f"return {run}(({packed}))"
    outer_args = ", ".join([run, *defaults])
    src = (
        f"def {RESERVED_PREFIX}make({outer_args}):\n"
        f"    {'async ' if is_async else ''}def stub({', '.join(params)}):\n"
        f"        {body}\n"
        f"    return stub\n"
    )
    make = define(src, f"{RESERVED_PREFIX}make", "caller")
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
    index = caller.__code__.co_freevars.index(f"{RESERVED_PREFIX}run")
    closure = caller.__closure__
    assert closure is not None
    closure[index].cell_contents = target


class Compiled(functools.partial[Any]):
    """A compiled caller as a decorator returns it (`compiled`): a function's attributes can only be stored, and a
    subclass of this one computes some when they are read (a stub's `.sql`, from its plan). A partial of nothing
    more adds no Python frame: a call goes from C straight to the compiled function, some 30 ns later than a
    function's own call (45 ns on CPython 3.11, where a subclass does not inherit the partial's vectorcall). It
    keeps what a function does for its users: its names and docstring, binding as a method when read from an
    instance, pickling by name."""

    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Any]

    def __get__(self, instance: object, owner: type | None = None, /) -> Any:
        return self if instance is None else MethodType(self, instance)

    def __reduce__(self) -> str:
        return self.__qualname__

    def __repr__(self) -> str:
        return f"<pgdecor stub {self.__module__}.{self.__qualname__}>"


def compiled(cls: type[C], caller: Callable[..., Any], fn: Callable[..., Any]) -> C:
    """*caller* (`make_caller`) for the stub *fn*, as *cls*."""
    made = cls(caller)
    made.__module__ = fn.__module__
    made.__name__ = fn.__name__
    made.__qualname__ = fn.__qualname__
    made.__doc__ = fn.__doc__
    made.__wrapped__ = fn
    return made
