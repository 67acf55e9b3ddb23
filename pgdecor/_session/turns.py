"""An async session's lock (`Turns`): the turns its calls take on its one connection, as asyncio's lock gives them,
and the calls that wait, instead of taking a turn, for one to send their statements after another's (see
`_wire.flight`).

A call started while another holds the lock sends its statement at once if that other reads its result through the
wire, after it, in its round trip, unless calls started before it wait for their turn (`queued`): it takes its turn
behind them then, as one after the other. If none reads through the wire yet (its holder is still borrowing the
connection, or looking up its function), it waits to be woken (`waiter`): whenever the lock is released, and
whenever its holder is about to send its statement through the wire (`wake`). Woken, it looks again: a pipeline to
join, a free lock to take, or another wait.
"""

from __future__ import annotations

import asyncio
from typing import Literal

__all__ = ["Turns"]


class Turns(asyncio.Lock):
    """asyncio's lock, waking the calls waiting to join a pipeline (`waiter`) whenever it is released, and knowing
    those queued for their turn (`queued`): a call started after them does not go before them."""

    def __init__(self) -> None:
        super().__init__()
        self._waiting: list[asyncio.Future[None]] = []
        #: The order calls came in (`ticket`), and the tickets of those waiting in `acquire` for their turn.
        self._tickets = 0
        self._queued: list[int] = []

    def ticket(self) -> int:
        """A number greater than any given before: where a call starts waiting."""
        self._tickets += 1
        return self._tickets

    def queued(self, before: int) -> bool:
        """Whether a call that came in before the ticket *before* waits for its turn."""
        return any(ticket < before for ticket in self._queued)

    async def acquire(self) -> Literal[True]:
        if not self.locked():
            return await super().acquire()
        ticket = self.ticket()
        self._queued.append(ticket)
        try:
            return await super().acquire()
        finally:
            self._queued.remove(ticket)

    def waiter(self) -> asyncio.Future[None]:
        """A future done at the next `wake`."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        return waiter

    def wake(self) -> None:
        """Wake the calls waiting, if any: each looks again for a pipeline to join, or the lock to take."""
        if not self._waiting:
            return
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if not waiter.done():  # not cancelled with its call
                waiter.set_result(None)

    def release(self) -> None:
        super().release()
        self.wake()
