"""What `procedure` and `query` return (`Stub`): the caller compiled with the stub's signature, whose plan is made
at decoration if the annotations resolve, else at the first call; its `.many` (a batch in one round trip) and
its `.sql`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, Concatenate, Protocol, TypeVar, cast, overload

from typing_extensions import ParamSpec

from pgdecor._annotations import qualified_name
from pgdecor._errors import ArgumentError
from pgdecor._plan.plan import Plan
from pgdecor._plan.results import Shape
from pgdecor._run.runner import Runner
from pgdecor._run.runner_async import AsyncRunner

from .caller import Compiled, compiled, make_caller, set_target
from .signature import hints_of

__all__ = ["ArgSet", "Stub", "make_stub"]

P = ParamSpec("P")
P2 = ParamSpec("P2")
R2 = TypeVar("R2")
S = TypeVar("S")
T = TypeVar("T")
R_co = TypeVar("R_co", covariant=True)


class Stub(Protocol[P, R_co]):
    """What `procedure` and `query` return: the stub's own signature, plus what pgdecor made of it."""

    #: The SQL sent on each call (psycopg placeholders): a function's is composed at its first call on each server
    #: (the one composed last; None before the first); None until a forward reference resolves.
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


class _Stub(Compiled):
    """A `Stub` as `make_stub` makes it: its `.sql` is read from its plan."""

    many: Callable[[Iterable[ArgSet]], Any]
    plan: Plan
    runner: Runner | AsyncRunner
    __pgdecor_plan__: Callable[[], Plan]  # how `pgdecor check` finds stubs

    @property
    def sql(self) -> str | None:
        plan: Plan | None = self.__dict__.get("plan")  # made at the first call if annotations name a later class
        return None if plan is None else plan.sql


def make_stub(
    fn: Callable[..., Any],
    sig: inspect.Signature,
    order: tuple[str, ...],
    build: Callable[[dict[str, Any]], Plan],
) -> Stub[..., Any]:
    """Build the plan now if the annotations resolve, else at the first call; return the generated caller."""
    stub = qualified_name(fn)

    def target(runner: Runner | AsyncRunner) -> Callable[[tuple[Any, ...]], Any]:
        stream = runner.plan.result.shape is Shape.STREAM
        if isinstance(runner, AsyncRunner) and stream and not inspect.iscoroutinefunction(fn):
            return runner.stream  # `def f() -> AsyncIterator[T]`: runs at the first anext
        return runner.call

    def current_runner(hints: dict[str, Any] | None = None) -> Runner | AsyncRunner:
        runner: Runner | AsyncRunner | None = getattr(made, "runner", None)
        if runner is None:
            hints = hints or hints_of(fn, stub, strict=True)
            assert hints is not None
            plan = build(hints)
            runner = AsyncRunner(plan) if plan.is_async else Runner(plan)
            set_target(caller, target(runner))
            made.plan = plan
            made.runner = runner
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
        given = list(argsets)
        packed: list[tuple[Any, ...]]
        # Tuples of one value per parameter bind as they are (told apart without a step per tuple in Python).
        if plain and set(map(type, given)) <= {tuple} and set(map(len, given)) <= {arity}:
            packed = cast("list[tuple[Any, ...]]", given)
        else:
            pack = packer()
            packed = [
                a if plain and type(a) is tuple and len(a) == arity else _bind_one(stub, pack, i, a)
                for i, a in enumerate(given)
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
    made = compiled(_Stub, caller, fn)
    made.many = many
    made.__pgdecor_plan__ = current_plan
    hints = hints_of(fn, stub)
    if hints is not None:
        current_runner(hints)
    return made  # type: ignore[return-value]


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
