"""Whether a session's block runs around the code that opens another session in the same thread or task: what
decides that the new session joins it.

The context variable says which session is current, not that its block is still running. A generator suspended
inside its block leaves the session current for the code iterating the generator, and a function that entered a
session by calling ``__enter__`` and returned leaves it current for whatever its thread runs next (the next task
of a thread pool); neither runs inside that block. So a session notes the frame that entered it (held while it is
open: a running or suspended frame, or one that returned and keeps the frames it was called from) and, for a
generator's frame, where the generator was run from (`site`). This runs when a session is entered, never on the
path of a call.
"""

from __future__ import annotations

from inspect import CO_ASYNC_GENERATOR, CO_GENERATOR
from types import CodeType, FrameType

__all__ = ["Site", "encloses", "site"]

#: A path of calls: the code of each frame and the instruction it was running, outermost first.
Site = tuple[tuple[CodeType, int], ...]

_GENERATOR = CO_GENERATOR | CO_ASYNC_GENERATOR


def site(entered: FrameType) -> Site | None:
    """For a session entered in a generator's frame: the calls that led to the frame running the generator (the
    first frame up that is not a generator's: it may iterate it, or be a context manager's ``__enter__``); None
    for any other frame, or a generator run from no Python frame."""
    if not entered.f_code.co_flags & _GENERATOR:
        return None
    runner = entered.f_back
    while runner is not None and runner.f_code.co_flags & _GENERATOR:
        runner = runner.f_back
    return None if runner is None else _calls(runner.f_back)


def encloses(entered: FrameType, where: Site | None, frame: FrameType) -> bool:
    """Whether the block of a session, entered by the frame *entered* (*where*: what `site` said of it), runs
    around *frame*, which opens another session in the same thread or task.

    It does if *entered* is one of our frames. A generator suspended in its block does unless we run through the
    calls that ran the generator: then we are the code iterating it, or a later call from the same place (the
    next task of a pool's thread). A frame that returned, leaving its session open (it called ``__enter__``),
    does for what the frames it was called from run after it (the ``with`` of a `contextlib.ExitStack`, a view
    after a request hook), unless the nearest of them has called the same function again: a worker running its
    next task, a loop's next turn."""
    stack: list[FrameType] = []
    f: FrameType | None = frame
    while f is not None:
        if f is entered:
            return True
        stack.append(f)
        f = f.f_back
    if where is not None:
        calls = tuple((f.f_code, f.f_lasti) for f in reversed(stack))
        return not (len(calls) > len(where) and calls[: len(where)] == where)
    # A returned frame keeps the frames it was called from; those are alive, as ours are, so ids tell them apart.
    # Which instruction made each call is noted only for a generator's runner (it costs a walk of the stack at
    # every entry): here the same function called again is what tells a later turn.
    depth = {id(f): i for i, f in enumerate(stack)}
    returned, caller = entered, entered.f_back
    while caller is not None and id(caller) not in depth:
        returned, caller = caller, caller.f_back
    if caller is None:  # a coroutine suspended in its block: a sync session the tasks of its thread share
        return True
    i = depth[id(caller)]
    return i == 0 or stack[i - 1].f_code is not returned.f_code


def _calls(frame: FrameType | None) -> Site:
    """The path of calls to *frame*, *frame* included."""
    calls = []
    while frame is not None:
        calls.append((frame.f_code, frame.f_lasti))
        frame = frame.f_back
    calls.reverse()
    return tuple(calls)
