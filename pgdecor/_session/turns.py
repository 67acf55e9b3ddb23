"""An async session's lock (`Turns`): the turns its calls take on its one connection, as asyncio's lock gives them,
and the calls that wait, instead of taking a turn, for one to send their statements after another's (see
`_wire.flight`).

A call started while another holds the lock sends its statement at once if that other reads its result through the
wire, after it, in its round trip; if none does yet (its holder is still borrowing the connection, or looking up
its function), it waits to be woken (`waiter`): whenever the lock is released, and whenever its holder is about to
send its statement through the wire (`wake`). Woken, it looks again: a pipeline to join, a free lock to take, or
another wait.
"""

from __future__ import annotations

import asyncio

__all__ = ["Turns"]


class Turns(asyncio.Lock):
    """asyncio's lock, waking the calls waiting to join a pipeline (`waiter`) whenever it is released."""

    def __init__(self) -> None:
        super().__init__()
        self._waiting: list[asyncio.Future[None]] = []

    @property
    def waiting(self) -> bool:
        """Whether calls wait to be woken."""
        return bool(self._waiting)

    def waiter(self) -> asyncio.Future[None]:
        """A future done at the next `wake`."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        return waiter

    def wake(self) -> None:
        """Wake the calls waiting: each looks again for a pipeline to join, or the lock to take."""
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if not waiter.done():  # not cancelled with its call
                waiter.set_result(None)

    def release(self) -> None:
        super().release()
        if self._waiting:
            self.wake()
