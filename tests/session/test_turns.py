"""An async session's lock (`Turns`): the turns its calls take, first come first served, taken at once when free,
and never lost to a call cancelled while it waits for its turn, or once woken for it."""

from __future__ import annotations

import asyncio

import pytest

from pgdecor._session.turns import Turns


async def _queued(lock: Turns, count: int) -> None:
    """Wait until *count* calls wait for their turn on *lock*."""
    while len(lock._waiters) < count:  # noqa: ASYNC110 - one step of the loop each, until they have queued
        await asyncio.sleep(0)


async def test_turns_go_in_the_order_calls_came_and_a_newcomer_waits_behind_them() -> None:
    lock, order = Turns(), []

    async def call(name: str) -> None:
        async with lock:
            order.append(name)

    assert lock.take()
    first, second = asyncio.ensure_future(call("first")), asyncio.ensure_future(call("second"))
    await _queued(lock, 2)
    lock.release()
    # Free now, but calls wait for it: one that comes now does not go before them.
    assert not lock.locked()
    assert not lock.take()
    await asyncio.gather(first, call("third"), second)
    assert order == ["first", "second", "third"]
    assert not lock.locked()


async def test_a_call_cancelled_while_it_waits_leaves_its_turn_to_the_next() -> None:
    lock = Turns()
    await lock.acquire()
    cancelled, next_one = asyncio.ensure_future(lock.acquire()), asyncio.ensure_future(lock.acquire())
    await _queued(lock, 2)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    lock.release()
    assert await next_one is True
    assert lock.locked()
    lock.release()
    assert lock.take()


async def test_a_call_cancelled_once_woken_for_its_turn_passes_it_on() -> None:
    lock = Turns()
    await lock.acquire()
    woken, next_one = asyncio.ensure_future(lock.acquire()), asyncio.ensure_future(lock.acquire())
    await _queued(lock, 2)
    lock.release()  # wakes the first in line, which is cancelled before it runs
    woken.cancel()
    with pytest.raises(asyncio.CancelledError):
        await woken
    assert await asyncio.wait_for(next_one, 10) is True
    lock.release()


@pytest.mark.parametrize("cancelled", [0, 1])
async def test_a_call_cancelled_in_line_as_the_lock_is_released_lets_one_call_at_a_time_in(cancelled: int) -> None:
    """Three calls wait; one of them is cancelled, and the lock released, before its task runs again: the turn goes
    to one call at a time, never to two at once."""
    lock, inside, most, ended = Turns(), 0, 0, []

    async def call(name: str) -> None:
        nonlocal inside, most
        async with lock:
            inside += 1
            most = max(most, inside)
            await _steps(3)
            inside -= 1
            ended.append(name)

    await lock.acquire()
    calls = [asyncio.ensure_future(call(name)) for name in "BCD"]
    await _queued(lock, 3)
    calls[cancelled].cancel()
    lock.release()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert most == 1
    assert isinstance(done[cancelled], asyncio.CancelledError)
    assert [r for i, r in enumerate(done) if i != cancelled] == [None, None]
    assert ended == [name for i, name in enumerate("BCD") if i != cancelled]
    assert not lock.locked()


async def _steps(count: int) -> None:
    """Give the other tasks *count* steps of the loop."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_releasing_a_lock_not_held_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not held"):
        Turns().release()
