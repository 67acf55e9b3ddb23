# Generated from pgdecor/_channels/waiter_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._channels.waiter_async`, generated from it: see there."""

from __future__ import annotations

import contextlib
import selectors
import socket

__all__ = ["Waiter"]


class Waiter:
    """Waits until a socket is readable, a time has passed, or `stop` was called."""

    __slots__ = ("_selector", "_wakeup", "_woken", "stopped")

    def __init__(self) -> None:
        #: Whether `stop` was called: no wait waits any more.
        self.stopped = False
        self._selector: selectors.BaseSelector | None = None
        self._wakeup: tuple[socket.socket, socket.socket] | None = None

    def wait(self, fd: int | None, timeout: float) -> bool:
        """Wait until the socket *fd* is readable (True), *timeout* seconds have passed, or `stop` was called
        (False)."""
        if self.stopped:
            return False
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
            self._wakeup = socket.socketpair()
            for end in self._wakeup:
                end.setblocking(False)
            self._selector.register(self._wakeup[0], selectors.EVENT_READ)
        selector = self._selector
        if self.stopped:  # stopped before there was anything to wake
            return False
        if fd is not None:
            selector.register(fd, selectors.EVENT_READ)
        try:
            events = selector.select(timeout)
        finally:
            if fd is not None:
                selector.unregister(fd)
        readable = False
        for key, _ in events:
            if key.fd == fd:
                readable = True
            elif self._wakeup is not None:
                with contextlib.suppress(BlockingIOError):
                    self._wakeup[0].recv(64)
        return readable

    def stop(self) -> None:
        """End the wait under way, if any, and every wait after it."""
        self.stopped = True
        wakeup = self._wakeup
        if wakeup is not None:
            with contextlib.suppress(OSError):  # closed meanwhile, or woken already
                wakeup[1].send(b"\0")

    def release(self) -> None:
        """Close what waiting made, if anything (the selector and sockets of a sync wait)."""
        selector, self._selector = self._selector, None
        wakeup, self._wakeup = self._wakeup, None
        if selector is not None:
            selector.close()
        for end in wakeup or ():
            end.close()
