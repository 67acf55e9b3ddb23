"""An async session's lock (`Turns`): the turns its calls take on its one connection, as asyncio's lock gives them,
and the calls that wait, instead of taking a turn, for one to send their statements after another's (see
`_wire.flight`).

A call started while another holds the lock sends its statement at once if that other reads its result through the
wire, after it, in its round trip, unless calls started before it wait for their turn (`queued`): it takes its turn
behind them then, as one after the other. If none reads through the wire yet (its holder is still borrowing the
connection, or looking up its function), it waits to be woken (`waiter`): whenever the lock is released, and
whenever its holder is about to send its statement through the wire (`wake`). Woken, it looks again: a pipeline to
join, a free lock to take, or another wait. A holder's statement goes in a pipeline others may join only once a task
other than the one that opened the session has called in it (`sending`): the calls of that one task alone never
overlap, and a statement alone costs less.
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from types import TracebackType
from typing import Any, Literal

__all__ = ["Turns"]


class Turns:
    """A lock as asyncio's (first come, first served; a waiter cancelled once woken passes its turn on), taken at
    once when free (`take`), with no coroutine; waking the calls waiting to join a pipeline (`waiter`) whenever it is
    released, and knowing those queued for their turn (`queued`): a call started after them does not go before
    them."""

    __slots__ = ("__weakref__", "_locked", "_loop", "_owner", "_queued", "_shared", "_tickets", "_waiters", "_waiting")

    def __init__(self, owner: asyncio.Task[Any] | None = None) -> None:
        self._locked = False
        #: The calls waiting in `acquire` for their turn, in the order they came.
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        #: The task that opened the session (weakly: its frames hold the session, which holds this), and whether
        #: another has made a call in it (`sending`); the owner's loop, which asks for the running task without a
        #: system call (Python 3.11's `get_running_loop` makes one).
        self._owner = None if owner is None else weakref.ref(owner)
        self._shared = owner is None
        self._loop = None if owner is None else owner.get_loop()
        self._waiting: list[asyncio.Future[None]] = []
        #: The order calls came in (`ticket`), and the tickets of those waiting in `acquire` for their turn.
        self._tickets = 0
        self._queued: list[int] = []

    def __repr__(self) -> str:
        state = "locked" if self._locked else "unlocked"
        return f"<pgdecor session lock [{state}, {len(self._waiters)} waiting]>"

    def sending(self) -> bool:
        """Its holder is about to send its statement through the wire: the calls waiting to join a pipeline are
        woken. Whether that statement goes in one they may join: once a task other than the one that opened the
        session has made a call in it (`asyncio.gather`, a task group), as only such calls can start while another's
        result is awaited, to send their statements after it. Until one has, a call's statement goes alone, outside a
        pipeline (less work per call)."""
        if self._waiting:
            self.wake()
        if not self._shared:
            owner = self._owner
            if owner is not None and asyncio.current_task(self._loop) is owner():
                return False
            self._shared, self._owner, self._loop = True, None, None
        return True

    def ticket(self) -> int:
        """A number greater than any given before: where a call starts waiting."""
        self._tickets += 1
        return self._tickets

    def queued(self, before: int) -> bool:
        """Whether a call that came in before the ticket *before* waits for its turn."""
        return any(ticket < before for ticket in self._queued)

    def locked(self) -> bool:
        return self._locked

    def take(self) -> bool:
        """Take the lock if it is free and no call waits for it, as `acquire` would without waiting; else False."""
        if self._locked or self._waiters:
            return False
        self._locked = True
        return True

    async def acquire(self) -> Literal[True]:
        """Take the lock, once the calls that came before have had their turns."""
        if self.take():
            return True
        ticket = self.ticket()
        self._queued.append(ticket)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            try:
                await fut
            finally:
                self._waiters.remove(fut)
                self._queued.remove(ticket)
        except asyncio.CancelledError:
            if not self._locked:  # woken, then cancelled: the next in line takes the turn
                self._wake_first()
            raise
        self._locked = True
        return True

    def release(self) -> None:
        if not self._locked:
            raise RuntimeError("the session's lock is not held")
        self._locked = False
        if self._waiters:
            self._wake_first()
        if self._waiting:
            self.wake()

    def _wake_first(self) -> None:
        """Wake the first call in line, unless it is done already (cancelled, or woken and not yet run): a cancelled
        one passes its turn on itself, as it leaves the line (`acquire`), and waking another too would let two take
        the lock."""
        if self._waiters and not (first := self._waiters[0]).done():
            first.set_result(None)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

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
