"""Throwaway servers end with the process that runs them, however it is told to stop.

SIGTERM (a CI job cancelled, ``timeout``, ``docker stop``) and SIGHUP (a closed terminal) end a Python process at
once by default, leaving its throwaway servers running and their directories behind, where Ctrl-C raises
`KeyboardInterrupt` and lets every ``with`` block and fixture around them stop them. While a server runs, both
signals are raised in the main thread as `Terminated`, a `KeyboardInterrupt`, so that they end it as Ctrl-C does;
pytest, which reports a `KeyboardInterrupt` and tears its fixtures down, does the same for them.

Only where the signal would have ended the process: a signal the program handles or ignores is left to it. A
second signal while the servers stop waits until they have (it would otherwise cut their cleanup short). A child
process forked meanwhile gets the dispositions of before back: the servers are its parent's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["Terminated", "deferred", "hold", "release"]

_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """The process was told to stop (SIGTERM, SIGHUP) while a throwaway server ran: raised where it was, as Ctrl-C
    raises `KeyboardInterrupt`."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.signum,))


#: The servers that hold the handlers, and the dispositions the handlers replaced.
_holders = 0
_replaced: dict[signal.Signals, Any] = {}
#: The first signal received since the handlers were installed; later ones are ignored.
_received: int | None = None
#: While servers stop (see `deferred`): a signal then is raised after.
_deferring = 0


def _handle(signum: int, _frame: FrameType | None) -> None:
    global _received  # noqa: PLW0603 - the handler's state is the process's
    if _received is not None:
        return
    _received = signum
    if not _deferring:
        raise Terminated(signum)


def hold() -> bool:
    """Raise SIGTERM and SIGHUP as `Terminated` until as many `release` calls as calls returning True; False
    outside the main thread, where no handler can be installed."""
    global _holders, _received  # noqa: PLW0603
    if threading.current_thread() is not threading.main_thread():
        return False
    if not _holders:
        _received = None
        for signum in _SIGNALS:
            if signal.getsignal(signum) == signal.SIG_DFL:
                _replaced[signum] = signal.signal(signum, _handle)
    _holders += 1
    return True


def release() -> None:
    """Put back what `hold` replaced, once the last server that held it has stopped (a handler installed since,
    by the program, stays)."""
    global _holders  # noqa: PLW0603
    if not _holders:  # put back already, in a forked child
        return
    _holders -= 1
    if not _holders:
        _put_back()


def _put_back() -> None:
    global _holders  # noqa: PLW0603
    _holders = 0
    for signum, previous in _replaced.items():
        if signal.getsignal(signum) == _handle:
            signal.signal(signum, previous)
    _replaced.clear()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A block a signal does not interrupt (a server stopping): one received meanwhile is raised when it ends."""
    global _deferring  # noqa: PLW0603
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = _received
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if before is None and _received is not None and not _deferring:
            raise Terminated(_received)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_put_back)
