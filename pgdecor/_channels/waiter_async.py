"""`AsyncWaiter`: how a listener waits for its connection's socket, in a wait that stopping ends at once, whatever
task (or thread) stops it: through the event loop here, and a selector with a pair of sockets to wake it in the
sync twin. Once stopped, every wait returns at once: the listener is closed.

This is the async source; `_channels.waiter` (`Waiter`) is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import socket

__all__ = ["AsyncWaiter"]


class AsyncWaiter:
    """Waits until a socket is readable, a time has passed, or `stop` was called."""

    __slots__ = ("_selector", "_wakeup", "_woken", "stopped")

    def __init__(self) -> None:
        #: Whether `stop` was called: no wait waits any more.
        self.stopped = False
        if True:  # ASYNC
            #: What `wait` waits for: resolved with True when the socket is readable, False by `stop`.
            self._woken: asyncio.Future[bool] | None = None
        else:
            #: What waits on the socket, and the pair of sockets `stop` wakes it with (made at the first wait).
            self._selector: selectors.BaseSelector | None = None
            self._wakeup: tuple[socket.socket, socket.socket] | None = None

    async def wait(self, fd: int | None, timeout: float) -> bool:
        """Wait until the socket *fd* is readable (True), *timeout* seconds have passed, or `stop` was called
        (False)."""
        if True:  # ASYNC
            if self.stopped:
                return False
            loop = asyncio.get_running_loop()
            self._woken = woken = loop.create_future()
            if fd is not None:
                loop.add_reader(fd, _readable, woken)
            try:
                await asyncio.wait([woken], timeout=timeout)
            finally:
                if fd is not None:
                    loop.remove_reader(fd)
                self._woken = None
            readable = woken.done() and woken.result()
        else:
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
        if True:  # ASYNC
            woken = self._woken
            if woken is not None and not woken.done():
                woken.set_result(False)
        else:
            wakeup = self._wakeup
            if wakeup is not None:
                with contextlib.suppress(OSError):  # closed meanwhile, or woken already
                    wakeup[1].send(b"\0")

    def release(self) -> None:
        """Close what waiting made, if anything (the selector and sockets of a sync wait)."""
        if True:  # ASYNC
            pass
        else:
            selector, self._selector = self._selector, None
            wakeup, self._wakeup = self._wakeup, None
            if selector is not None:
                selector.close()
            for end in wakeup or ():
                end.close()


if True:  # ASYNC

    def _readable(woken: asyncio.Future[bool]) -> None:
        if not woken.done():
            woken.set_result(True)
