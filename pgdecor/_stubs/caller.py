"""The callable a decorator returns, compiled from the stub's own parameter list: Python itself binds positional
and keyword arguments, applies defaults and words the errors for missing or extra arguments. The compiled function
packs the arguments into a tuple, in the order given, and hands it to its target (a runner's, once the plan is
made), which `set_target` can swap.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from pgdecor._codegen import define, named

__all__ = ["RESERVED_PREFIX", "make_caller", "set_target"]

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
