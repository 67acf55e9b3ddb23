"""Which session is current: the context variable that holds it, the session a call runs in (of the kind the call
needs), the session a new one joins, and a state seen as the kind it was entered as.
"""

from __future__ import annotations

import asyncio
import threading
from contextvars import ContextVar
from types import FrameType
from typing import Literal, overload

from typing_extensions import TypeIs

from pgdecor._errors import NoSessionError
from pgdecor._sources.guard import Guarded
from pgdecor._sources.source import Source

from .blocks import encloses
from .life import Life
from .state import AnyState, AsyncState, Owner, SyncState

__all__ = [
    "current",
    "current_session",
    "is_async_state",
    "is_sync_state",
    "no_session_error",
    "of_kind",
    "owner",
    "session_to_join",
]

#: The session open in this context (thread or task, and the tasks it starts), if any.
current: ContextVar[AnyState | None] = ContextVar("pgdecor.session", default=None)


def owner(*, is_async: bool) -> Owner:
    """The task (or thread) running: the owner of a session it enters."""
    if is_async:
        try:
            return asyncio.current_task()
        except RuntimeError:  # pragma: no cover - an async session outside a running loop cannot borrow
            return None
    return threading.current_thread()


def is_async_state(sess: Guarded) -> TypeIs[AsyncState]:
    """Whether the session the leak guard holds was entered with ``async with``."""
    return sess.is_async


def is_sync_state(sess: Guarded) -> TypeIs[SyncState]:
    """Whether the session the leak guard holds was entered with ``with``."""
    return not sess.is_async


@overload
def of_kind(sess: AnyState, *, is_async: Literal[True]) -> AsyncState: ...
@overload
def of_kind(sess: AnyState, *, is_async: Literal[False]) -> SyncState: ...
def of_kind(sess: AnyState, *, is_async: bool) -> AnyState:
    """*sess*, which a method of the kind *is_async* says was called on: one entered with the other kind refuses
    (`NoSessionError` saying what to call); one not entered yet is of either kind (it refuses to be used)."""
    if sess._life is not Life.UNOPENED and sess.is_async is not is_async:
        if sess.is_async:
            fix = "await its async methods (`aconnection()`, `areplica_connection()`, `aend()`)"
        else:
            fix = "call its sync methods (`connection()`, `replica_connection()`, `end()`)"
        how = "`async with session(...)`" if sess.is_async else "`with session(...)`"
        msg = f"{sess!r} was entered with {how}: {fix}"
        raise NoSessionError(msg)
    return sess


@overload
def session_to_join(source: Source, entered: FrameType, *, is_async: Literal[True]) -> AsyncState | None: ...
@overload
def session_to_join(source: Source, entered: FrameType, *, is_async: Literal[False]) -> SyncState | None: ...
def session_to_join(source: Source, entered: FrameType, *, is_async: bool) -> AnyState | None:
    """The session a session on *source*, of the kind *is_async* says, entered by the frame *entered*, joins: the
    current one, if it is on the same source, of the same kind, has not ended, and its block runs around
    *entered*. Tasks and threads that share its context run inside its block; in the thread or task that entered
    it, `_session.blocks.encloses` decides."""
    outer = current.get()
    if outer is None or outer.is_async != is_async or outer.source.key != source.key:
        return None
    entered_by, where = outer._frame, outer._site  # read first: the leak guard may end it meanwhile
    if outer._life is not Life.OPEN or entered_by is None:  # ended by its block, by `end`, the leak guard, a fork
        return None
    if outer._owner is not owner(is_async=is_async):
        return outer
    return outer if encloses(entered_by, where, entered) else None


@overload
def current_session(what: str, call: str = "", *, is_async: Literal[True]) -> AsyncState: ...
@overload
def current_session(what: str, call: str = "", *, is_async: Literal[False]) -> SyncState: ...
def current_session(what: str, call: str = "", *, is_async: bool) -> AnyState:
    """The session of this context, which must be of the kind *what* (a stub, ``transaction``) needs; *call* is
    how it was called (``()``, ``.many()``), for the message."""
    sess = current.get()
    if sess is None or sess.is_async is not is_async:
        raise no_session_error(what + call, sess, is_async=is_async)
    return sess


def no_session_error(what: str, sess: AnyState | None, *, is_async: bool) -> NoSessionError:
    """The error for a call made where no session of its kind is open."""
    opener = "async with session(...)" if is_async else "with session(...)"
    if sess is None:
        msg = f"{what} was called outside any session; call it inside `{opener}:`"
    elif is_async:
        msg = f"{what} is async but the current session is synchronous; open it with `async with session(...)`"
    else:
        msg = (
            f"{what} is synchronous but the current session is async; "
            f"declare the stub with `async def`, or open a sync session here with `with session(...)` (a Database "
            f"opened with `async with` serves sync sessions too)"
        )
    return NoSessionError(msg)
