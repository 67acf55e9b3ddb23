"""Failing calls leave no reference cycles: with the cyclic collector off (as the suite runs), everything a failed
session used is freed by reference counting at once, so nothing waits for the garbage collector."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable

import psycopg
import pytest

from bench.failing import KINDS, cyclic_garbage, fail_async, fail_sync
from pgdecor import Database, Error

ROUNDS = 30
#: Calls before counting: first calls resolve and cache what later calls reuse.
WARM_UP = 3


@pytest.fixture
def collector_off() -> None:
    assert not gc.isenabled()  # the suite runs with the collector off (conftest)
    cyclic_garbage()  # what earlier tests left is not this test's


@pytest.mark.usefixtures("collector_off")
@pytest.mark.parametrize("kind", range(len(KINDS)), ids=KINDS)
def test_failing_sync_sessions_leave_no_cycles(users: str, kind: int, figures: Callable[[str], None]) -> None:
    with Database(users, max_size=1) as db:
        for n in range(WARM_UP + ROUNDS):
            if n == WARM_UP:
                cyclic_garbage()
            with contextlib.suppress(Error, psycopg.Error):
                fail_sync(db, kind)
        left = cyclic_garbage()
    figures(f"{KINDS[kind]}: {left} cyclic pgdecor/psycopg objects after {ROUNDS} failing sync sessions")
    assert left == 0


@pytest.mark.usefixtures("collector_off")
@pytest.mark.parametrize("kind", range(len(KINDS)), ids=KINDS)
def test_failing_async_sessions_leave_no_cycles(users: str, kind: int, figures: Callable[[str], None]) -> None:
    async def main() -> int:
        async with Database(users, max_size=1) as db:
            for n in range(WARM_UP + ROUNDS):
                if n == WARM_UP:
                    cyclic_garbage()
                with contextlib.suppress(Error, psycopg.Error):
                    await fail_async(db, kind)
            return cyclic_garbage()

    left = asyncio.run(main())
    figures(f"{KINDS[kind]}: {left} cyclic pgdecor/psycopg objects after {ROUNDS} failing async sessions")
    assert left == 0
