"""An async session's lock (`Turns`): the turns its calls take on its one connection, as asyncio's lock gives them,
and the calls that wait, instead of taking a turn, for one to send their statements after another's (see
`_wire.flight`).

A call started while another holds the lock sends its statement at once if that other reads its result through the
wire, after it, in its round trip, unless calls started before it wait for their turn (`queued`): it takes its turn
behind them then, as one after the other. If none reads through the wire yet (its holder is still borrowing the
connection, or looking up its function), it waits to be woken (`waiter`): whenever the lock is released, and
whenever its holder is about to send its statement through the wire (`wake`). Woken, it looks again: a pipeline to
join, a free lock to take, or another wait. A holder's statement goes in a pipeline others may join only once a task
other than the one that opened the session has called in it (`shared`): the calls of that one task alone never
overlap, and a statement alone costs less.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Coroutine
from typing import Any, Literal

__all__ = ["Turns"]

#: asyncio's own, called as functions: no `super()` to make on every call.
_acquire, _release = asyncio.Lock.acquire, asyncio.Lock.release


class Turns(asyncio.Lock):
    """asyncio's lock, waking the calls waiting to join a pipeline (`waiter`) whenever it is released, and knowing
    those queued for their turn (`queued`): a call started after them does not go before them."""

    def __init__(self, owner: asyncio.Task[Any] | None = None) -> None:
        super().__init__()
        #: The task that opened the session (weakly: its frames hold the session, which holds this), and whether
        #: another has made a call in it (`shared`); the owner's loop, which asks for the running task without a
        #: system call (Python 3.11's `get_running_loop` makes one).
        self._owner = None if owner is None else weakref.ref(owner)
        self._shared = owner is None
        self._loop = None if owner is None else owner.get_loop()
        self._waiting: list[asyncio.Future[None]] = []
        #: The order calls came in (`ticket`), and the tickets of those waiting in `acquire` for their turn.
        self._tickets = 0
        self._queued: list[int] = []

    def shared(self) -> bool:
        """Whether a task other than the one that opened the session has made a call in it (`asyncio.gather`, a task
        group): only such calls can start while another's result is awaited, to send their statements after it. Until
        one has, a call's statement goes alone, outside a pipeline (less work per call)."""
        if not self._shared:
            owner = self._owner
            if owner is None or asyncio.current_task(self._loop) is not owner():
                self._shared, self._owner, self._loop = True, None, None
        return self._shared

    def ticket(self) -> int:
        """A number greater than any given before: where a call starts waiting."""
        self._tickets += 1
        return self._tickets

    def queued(self, before: int) -> bool:
        """Whether a call that came in before the ticket *before* waits for its turn."""
        return any(ticket < before for ticket in self._queued)

    def acquire(self) -> Coroutine[Any, Any, Literal[True]]:
        # Not a coroutine of its own: a free lock is taken by asyncio's, awaited at once, one coroutine less per call.
        return _acquire(self) if not self.locked() else self._queued_acquire()

    async def _queued_acquire(self) -> Literal[True]:
        ticket = self.ticket()
        self._queued.append(ticket)
        try:
            return await _acquire(self)
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
        _release(self)
        if self._waiting:
            self.wake()
