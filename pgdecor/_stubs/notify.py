"""`notify` and `listen`: stubs that send a channel's notifications in the session's transaction (a ``@query`` of
``pg_notify`` underneath), and stubs whose calls return listeners of the channel (`_channels.listener_async`)."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Literal, TypeVar, Union, overload

from typing_extensions import ParamSpec

from pgdecor._annotations import describe, qualified_name
from pgdecor._channels.channel import Missed, Subscription, channel_name
from pgdecor._channels.listener import Listener
from pgdecor._channels.listener_async import AsyncListener
from pgdecor._channels.payload import Payload
from pgdecor._errors import SignatureError
from pgdecor._plan.plan import Plan
from pgdecor._sources.kinds import Given

from .caller import make_caller
from .decorators import query

__all__ = ["listen", "notify"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

# pg_notify rather than NOTIFY: a function takes the channel and the payload as bound values.
_NOTIFY = "SELECT pg_catalog.pg_notify(%(channel)s, %(payload)s)"


def notify(channel: str, /) -> _Notify:
    """Turn a stub taking one payload into a notification on *channel*, sent in the current session's transaction::

        @notify("orders")
        def order_placed(event: OrderPlaced) -> None: ...

        with session(db):
            place(order)
            order_placed(OrderPlaced(order.id))  # delivered when the session commits

    PostgreSQL delivers it to the channel's listeners when the transaction commits, and never if it rolls back:
    sent next to the writes it announces, it is announced if and only if they are stored. A ``str`` payload is
    sent as it is; any other (a dataclass, NamedTuple, TypedDict, pydantic model, enum, list, ...) as JSON. A
    payload that would not arrive as itself, or is longer than PostgreSQL takes (7,999 bytes), raises
    `ArgumentError` and nothing is sent. An ``async def`` stub sends in an async session.
    """
    return _Notify(channel_name("@notify", channel))


def listen(
    channel: str,
    /,
    *,
    check_every: float = 10.0,
    check_timeout: float = 5.0,
    undecodable: Literal["skip", "raise"] = "skip",
) -> _Listen:
    """Turn a stub into a listener of *channel*: called with a `Database` or a conninfo string, it returns a
    `Listener` (an ``AsyncListener`` for ``-> AsyncIterator[...]``) of the payloads, decoded as annotated::

        @listen("orders")
        def orders(db: Database) -> Iterator[OrderPlaced | Missed]: ...

        with orders(db) as events:
            for event in events:
                if isinstance(event, Missed):
                    rescan()  # first, and whenever notifications may have been lost
                else:
                    handle(event)

    The listener opens a connection of its own to the source's server (never a pooled one, and never through a
    pooler, which it refuses). A connection that has carried nothing for *check_every* seconds is asked
    ``SELECT 1``, and replaced if the answer takes longer than *check_timeout* (which also bounds each attempt to
    connect, unless the source sets ``connect_timeout``); so is one the server closed.
    Since notifications sent while no connection listens are lost, the annotation must include `Missed`, which
    the listener yields when it first listens and each time it listens anew. A payload that does not decode is
    skipped with a WARNING (*undecodable* ``"raise"``: raises `PayloadError`).
    """
    channel = channel_name("@listen", channel)
    for name, value in (("check_every", check_every), ("check_timeout", check_timeout)):
        if type(value) not in (int, float) or not 0 < value < float("inf"):
            msg = f"@listen({channel!r}): {name} is a number of seconds above 0, not {value!r}"
            raise SignatureError(msg)
    if undecodable not in ("skip", "raise"):
        msg = f"@listen({channel!r}): undecodable is 'skip' or 'raise', not {undecodable!r}"
        raise SignatureError(msg)
    return _Listen(channel, float(check_every), float(check_timeout), raise_undecodable=undecodable == "raise")


class _Notify:
    """The decorator ``@notify(channel)`` returns."""

    __slots__ = ("channel",)

    def __init__(self, channel: str) -> None:
        self.channel = channel

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, None]], /) -> Callable[P, Coroutine[Any, Any, None]]: ...
    @overload
    def __call__(self, fn: Callable[P, None], /) -> Callable[P, None]: ...
    def __call__(self, fn: Callable[P, Any], /) -> Callable[P, Any]:
        return _build_notify(fn, self.channel)


class _Listen:
    """The decorator ``@listen(channel)`` returns."""

    __slots__ = ("channel", "check_every", "check_timeout", "raise_undecodable")

    def __init__(self, channel: str, check_every: float, check_timeout: float, *, raise_undecodable: bool) -> None:
        self.channel = channel
        self.check_every, self.check_timeout = check_every, check_timeout
        self.raise_undecodable = raise_undecodable

    @overload
    def __call__(self, fn: Callable[P, AsyncIterator[T]], /) -> Callable[P, AsyncListener[T]]: ...
    @overload
    def __call__(self, fn: Callable[P, Iterator[T]], /) -> Callable[P, Listener[T]]: ...
    def __call__(self, fn: Callable[P, Any], /) -> Callable[P, Any]:
        return _build_listen(fn, self)


# -- building ----------------------------------------------------------------------------------------------------


def _one_parameter(fn: Callable[..., Any], stub: str, what: str) -> tuple[inspect.Signature, inspect.Parameter]:
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if len(params) != 1 or params[0].kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
        msg = f"{stub}: {what}, not {len(params)} parameters ({', '.join(map(str, params)) or 'none'})"
        raise SignatureError(msg)
    return sig, params[0]


def _once(fn: Callable[..., Any], stub: str, make: Callable[[dict[str, Any]], R]) -> Callable[..., R | None]:
    """What *make* makes of the stub's resolved annotations, made once they resolve (at the latest at the first
    call): the function returns None while a forward reference cannot be resolved yet, unless told *strict*."""
    made: list[R] = []

    def get(*, strict: bool) -> R | None:
        if not made:
            found = _made(fn, stub, make, strict=strict)
            if found is None:
                return None
            made.append(found)
        return made[0]

    return get


def _made(fn: Callable[..., Any], stub: str, make: Callable[[dict[str, Any]], R], *, strict: bool) -> R | None:
    """What *make* makes of the stub's resolved annotations; None while a forward reference (in them, or in the
    classes they name) cannot be resolved yet, unless *strict*."""
    try:
        return make(typing.get_type_hints(fn, include_extras=True))
    except NameError as err:
        if not strict:
            return None
        msg = (
            f"{stub}: annotation {err.name!r} cannot be resolved; define or import it at module level in "
            f"{fn.__module__}"
        )
        raise SignatureError(msg) from err


def _build_notify(fn: Callable[..., Any], channel: str) -> Callable[..., Any]:
    stub = qualified_name(fn)
    what = "a @notify stub takes one parameter, the payload (`event: OrderPlaced`)"
    sig, param = _one_parameter(fn, stub, what)
    if param.annotation is inspect.Parameter.empty:
        msg = f"{stub}: parameter {param.name!r} has no annotation; annotate it with the payload's type"
        raise SignatureError(msg)
    is_async = inspect.iscoroutinefunction(fn)
    sender = _sender(fn, is_async=is_async)

    def make(hints: dict[str, Any]) -> Payload:
        if hints.get("return", type(None)) not in (None, type(None)):
            msg = (
                f"{stub}: a @notify stub returns None (the notification is delivered when the transaction "
                f"commits), not {describe(hints['return'])}"
            )
            raise SignatureError(msg)
        return Payload(stub, hints[param.name])

    payload = _once(fn, stub, make)  # the payload's codec

    def send(args: tuple[Any, ...]) -> Any:
        codec = payload(strict=True)
        assert codec is not None
        return sender(channel, codec.encode(args[0]))

    def plan() -> Plan:  # what `pgdecor check` finds stubs by: the payload's type is checked in making it
        payload(strict=True)
        found: Plan = sender.__pgdecor_plan__()  # type: ignore[attr-defined]
        return found

    payload(strict=False)
    caller = make_caller(fn, sig, (param.name,), send)
    caller.channel = channel  # type: ignore[attr-defined]
    caller.__pgdecor_plan__ = plan  # type: ignore[attr-defined]
    return caller


def _sender(fn: Callable[..., Any], *, is_async: bool) -> Callable[..., Any]:
    """The ``@query`` that sends a notification, named as the stub *fn* (which errors and spans name)."""
    if is_async:

        async def send(channel: str, payload: str) -> None: ...

    else:

        def send(channel: str, payload: str) -> None: ...  # type: ignore[misc]

    send.__module__, send.__name__, send.__qualname__ = fn.__module__, fn.__name__, fn.__qualname__
    return query(_NOTIFY)(send)


def _build_listen(fn: Callable[..., Any], options: _Listen) -> Callable[..., Any]:
    stub = qualified_name(fn)
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        msg = f"{stub}: a @listen stub is a plain `def` annotated `-> Iterator[...]` or `-> AsyncIterator[...]`"
        raise SignatureError(msg)
    what = "a @listen stub takes one parameter, where to listen (`db: Database`, or a conninfo string)"
    sig, param = _one_parameter(fn, stub, what)

    def make(hints: dict[str, Any]) -> tuple[Subscription, bool]:
        payload, is_async = _listened(stub, hints.get("return"))
        sub = Subscription(
            stub,
            options.channel,
            Payload(stub, payload),
            options.check_every,
            options.check_timeout,
            options.raise_undecodable,
        )
        return sub, is_async

    subscription = _once(fn, stub, make)  # what the stub says, and whether it listens async

    def start(args: tuple[Any, ...]) -> Any:
        found = subscription(strict=True)
        assert found is not None
        sub, is_async = found
        source: Given = args[0]
        return AsyncListener(sub, source) if is_async else Listener(sub, source)

    def plan() -> None:  # `pgdecor check`: making it checks the payload's type; nothing is in the database
        subscription(strict=True)

    subscription(strict=False)
    caller = make_caller(fn, sig, (param.name,), start)
    caller.channel = options.channel  # type: ignore[attr-defined]
    caller.__pgdecor_plan__ = plan  # type: ignore[attr-defined]
    return caller


def _listened(stub: str, annotation: Any) -> tuple[Any, bool]:
    """The payload's annotation in a listener stub's ``-> Iterator[P | Missed]`` (or ``AsyncIterator``), and
    whether it is async."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin not in (Iterator, AsyncIterator) or len(args) != 1:
        msg = (
            f"{stub}: a @listen stub is annotated `-> Iterator[Payload | Missed]` (or `AsyncIterator[...]`), not "
            f"{'nothing' if annotation is None else describe(annotation)}"
        )
        raise SignatureError(msg)
    (item,) = args
    members = typing.get_args(item) if typing.get_origin(item) in (Union, types.UnionType) else (item,)
    if Missed not in members:
        name = "AsyncIterator" if origin is AsyncIterator else "Iterator"
        msg = (
            f"{stub}: a listener yields a `Missed` when notifications may have been lost (when it starts, and "
            f"after it reconnects), so that what they announce can be read again: annotate "
            f"`-> {name}[{describe(item)} | Missed]` and handle it"
        )
        raise SignatureError(msg)
    rest = tuple(m for m in members if m is not Missed)
    if not rest:
        msg = f"{stub}: annotate the payload's type next to Missed (`Iterator[OrderPlaced | Missed]`)"
        raise SignatureError(msg)
    return (rest[0] if len(rest) == 1 else Union[rest]), origin is AsyncIterator  # noqa: UP007 - a runtime tuple
