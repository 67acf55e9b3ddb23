"""Failing calls and abandoned streams leave no reference cycles: with the cyclic collector off, everything a failed
session or a stream left before its end used is freed by reference counting at once, so nothing waits for the
garbage collector.

The soaks run in a fresh interpreter (`python -m bench.failing`), so that nothing another test left behind is
counted; a single path is counted here, between two collections."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from bench.failing import ASYNC_ONLY, KINDS, STREAM_KINDS, Point, apoints, points
from pgdecor import session

ROOT = Path(__file__).resolve().parents[2]
#: psycopg's pure-Python implementation (libpq through ctypes) leaves ctypes' own array types for the collector on
#: its queries: there, what is counted is pgdecor's and psycopg's objects; on its C implementation, everything.
ALL_KINDS = psycopg.pq.__impl__ != "python"
SESSIONS = 60


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", KINDS)
def test_failing_sessions_leave_no_cycles(
    pg_server_dsn: str, kind: str, mode: str, figures: Callable[[str], None]
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.failing", "--dsn", pg_server_dsn, "--sessions", str(SESSIONS), "--kind", kind,
         "--mode", mode],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.splitlines()[0])
    figures(f"{result['cyclic_objects']} cyclic pgdecor/psycopg objects after {SESSIONS} failing sessions")
    assert result["sessions"] == SESSIONS
    assert result["cyclic_objects"] == 0


STREAMS = 60


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "mode"),
    [(kind, mode) for kind in STREAM_KINDS for mode in ("sync", "async") if mode == "async" or kind not in ASYNC_ONLY],
)
def test_abandoned_streams_leave_no_cycles(
    pg_server_dsn: str, kind: str, mode: str, figures: Callable[[str], None]
) -> None:
    """A stream left before its end (dropped, outliving its session, never read, its session raising, its fetch
    failing, its owner gone, its task cancelled) leaves nothing at all for the cyclic collector."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.failing", "--dsn", pg_server_dsn, "--sessions", "0", "--streams", str(STREAMS),
         "--stream-kind", kind, "--mode", mode],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.splitlines()[0])
    figures(f"{result['unreachable']} objects left for the cyclic collector after {STREAMS} streams")
    assert (result["mode"], result["kinds"], result["streams"]) == (mode, [kind], STREAMS)
    assert result["cyclic_objects"] == 0
    assert result["unreachable"] == 0 or not ALL_KINDS


@pytest.mark.slow
def test_generator_finished_in_another_context_leaves_no_cycle(pg_dsn: str) -> None:
    """A generator reading a stream in a session of its own, read on from another context than the one it began in,
    leaves nothing for the cyclic collector: its session cannot reset the context it began in, and does not keep
    it."""

    def rows() -> Iterator[Point]:
        with session(pg_dsn):
            yield from points(3)

    gc.collect()
    read = rows()
    contextvars.copy_context().run(next, read)
    with contextlib.suppress(ValueError):  # contextvars': the session's token was made in another context
        for _ in read:
            pass
    del read
    assert _collected() == 0


@pytest.mark.slow
def test_async_generator_finished_in_another_task_leaves_no_cycle(pg_dsn: str) -> None:
    """The async twin: a generator that began in one task (and its context), read on in another."""

    async def rows() -> AsyncIterator[Point]:
        async with session(pg_dsn):
            async for point in await apoints(3):
                yield point

    async def scenario() -> int:
        gc.collect()
        read = rows()
        await asyncio.ensure_future(anext(read))
        with contextlib.suppress(ValueError):
            async for _ in read:
                pass
        del read
        return _collected()

    assert asyncio.run(scenario()) == 0


def _collected() -> int:
    """What the cyclic collector frees now (see `ALL_KINDS`: only pgdecor's and psycopg's objects where psycopg runs
    over ctypes)."""
    if ALL_KINDS:
        return gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return sum(type(o).__module__.startswith(("pgdecor", "psycopg")) for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
