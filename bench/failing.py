"""Failing sessions and abandoned streams, many of them, with the cyclic garbage collector off: memory must stay
flat.

    python -m bench.failing                   # 10,000 sessions, 10,000 + 10,000 streams on a throwaway server
    python -m bench.failing --sessions 1000 --dsn postgresql:///app

Each session fails another way (a database error, one caught by the code, one inside a savepoint, its backend
terminated, rows that do not fit the return type), half of them sync, half async. Then sync streams are left
half-read in every way a program leaves one (dropped while its session goes on, outliving its session, never
read, their session raising, their fetch failing, their thread ending inside the session), and async streams
have their reading task cancelled (while it waits on something else, and while a fetch runs). The report gives
the resident memory after the first tenth and at the end, and the pgdecor/psycopg objects that only the cyclic
collector could free (which must be none); for the streams, also every object it could free (none either).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from pgdecor import Database, Error, NoSessionError, query, session, transaction
from pgdecor.testing import temporary_dsn


@dataclass
class Point:
    x: int


@query("SELECT 1 / %(d)s")
def divide(d: int) -> int: ...


@query("SELECT 1 / %(d)s")
async def adivide(d: int) -> int: ...


@query("SELECT 'text' AS y")
def wrong() -> Point: ...


@query("SELECT 'text' AS y")
async def awrong() -> Point: ...


@query("SELECT pg_terminate_backend(pg_backend_pid())")
def die() -> bool: ...


@query("SELECT pg_terminate_backend(pg_backend_pid())")
async def adie() -> bool: ...


#: The ways a session fails, in the order `fail_sync` and `fail_async` number them.
KINDS = ["db error", "caught error", "savepoint error", "killed backend", "mapping error"]


def fail_sync(db: Database, kind: int) -> None:
    """A sync session on *db* that fails the *kind*-th way (see `KINDS`)."""
    with session(db):
        if kind == 0:
            divide(0)
        elif kind == 1:
            with contextlib.suppress(psycopg.Error):
                divide(0)
        elif kind == 2:
            with contextlib.suppress(psycopg.Error), transaction():
                divide(0)
        elif kind == 3:
            die()
        else:
            wrong()


async def fail_async(db: Database, kind: int) -> None:
    """The async twin of `fail_sync`."""
    async with session(db):
        if kind == 0:
            await adivide(0)
        elif kind == 1:
            with contextlib.suppress(psycopg.Error):
                await adivide(0)
        elif kind == 2:
            with contextlib.suppress(psycopg.Error):
                async with transaction():
                    await adivide(0)
        elif kind == 3:
            await adie()
        else:
            await awrong()


#: Rows of each stream: two fetches, so that a stream read partly has rows left on the server.
ROWS = 1500


@query("SELECT i AS x FROM generate_series(1, %(n)s) AS i")
def points(n: int) -> Iterator[Point]: ...


@query("SELECT i AS x FROM generate_series(1, %(n)s) AS i")
async def apoints(n: int) -> AsyncIterator[Point]: ...


@query("SELECT i AS x FROM generate_series(1, %(n)s) AS i")
def lazy_points(n: int) -> AsyncIterator[Point]: ...  # a plain def: its query runs at the first anext


@query("SELECT 1 / (i - 1200) AS x FROM generate_series(1, 1500) AS i")
def broken_points() -> Iterator[Point]: ...  # its second fetch fails


@query("SELECT 1 / (i - 1200) AS x FROM generate_series(1, 1500) AS i")
async def abroken_points() -> AsyncIterator[Point]: ...


#: The ways a stream is left before its end. A stream `abandoned` is dropped half-read while its session goes on;
#: one `outlived` is used after its session ended; its session's block raises (`session raised`), or its own
#: second fetch does (`failed fetch`); its thread or task ends inside the session, which the leak guard ends
#: (`leaked`). Async only: its reading task is cancelled while it waits on something else (`cancelled`), or while
#: the stream's fetch runs (`cancelled in fetch`).
STREAM_KINDS = [
    "abandoned",
    "outlived",
    "never iterated",
    "session raised",
    "failed fetch",
    "leaked",
    "cancelled",
    "cancelled in fetch",
]
ASYNC_ONLY = ["cancelled", "cancelled in fetch"]


class Interrupted(Exception):  # noqa: N818 - the program's own error, not a failure of pgdecor's
    """What a program raises while a stream of its session is open."""


def abandon_sync(db: Database, kind: str) -> None:
    """A sync stream on *db*, left the *kind* way (see `STREAM_KINDS`)."""
    if kind == "leaked":
        owner = threading.Thread(target=_leak_sync, args=(db,))
        owner.start()
        owner.join()
        return
    with contextlib.suppress(Interrupted, psycopg.Error, NoSessionError):
        stream = _left_sync(db, kind)
        if kind == "outlived":
            next(stream)


def _left_sync(db: Database, kind: str) -> Iterator[Point]:
    with session(db) as sess:  # noqa: F841 - named: a frame in a traceback holds it
        stream = broken_points() if kind == "failed fetch" else points(ROWS)
        if kind == "never iterated":
            return stream
        for point in stream:
            if point.x == 10 and kind != "failed fetch":  # that one reads on, into the fetch that fails
                break
        if kind == "abandoned":
            next(points(ROWS))  # another, dropped at once
            next(points(ROWS))
        elif kind == "session raised":
            raise Interrupted
    return stream


def _leak_sync(db: Database) -> None:
    session(db).__enter__()
    next(points(ROWS))


async def abandon_async(db: Database, kind: str, *, lazily: bool) -> None:
    """The async twin of `abandon_sync`, a plain ``def`` stub's stream if *lazily*; also the kinds of
    `ASYNC_ONLY`."""
    if kind == "leaked":
        await asyncio.create_task(_leak_async(db, lazily=lazily))
        return
    if kind in ASYNC_ONLY:
        reading = asyncio.Event()
        reader = asyncio.create_task(_cancelled_async(db, kind, reading, lazily=lazily))
        await reading.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        return
    with contextlib.suppress(Interrupted, psycopg.Error, NoSessionError):
        if kind in ("session raised", "failed fetch"):  # in a task, as a server runs a request: it keeps the error
            await asyncio.create_task(_left_async(db, kind, lazily=lazily))
            return
        stream = await _left_async(db, kind, lazily=lazily)
        if kind == "outlived":
            await anext(stream)


async def _stream(kind: str, *, lazily: bool) -> AsyncIterator[Point]:
    if kind == "failed fetch":
        return await abroken_points()
    return lazy_points(ROWS) if lazily else await apoints(ROWS)


async def _left_async(db: Database, kind: str, *, lazily: bool) -> AsyncIterator[Point]:
    async with session(db) as sess:  # noqa: F841 - named: a frame in a traceback holds it
        stream = await _stream(kind, lazily=lazily)
        if kind == "never iterated":
            return stream
        async for point in stream:
            if point.x == 10 and kind != "failed fetch":
                break
        if kind == "abandoned":
            await anext(await _stream(kind, lazily=lazily))
            await anext(await _stream(kind, lazily=lazily))
        elif kind == "session raised":
            raise Interrupted
    return stream


async def _cancelled_async(db: Database, kind: str, reading: asyncio.Event, *, lazily: bool) -> None:
    """Read a stream until cancelled: while waiting on something else after its first row (``cancelled``), or
    in the fetch that follows the first 1,000 rows (``cancelled in fetch``)."""
    async with session(db) as sess:  # noqa: F841 - named: a frame in the cancellation's traceback holds it
        async for point in await _stream(kind, lazily=lazily):
            if kind == "cancelled":
                reading.set()
                await asyncio.Event().wait()  # a client that reads slowly
            elif point.x == 1000:  # the last of the first batch: the next anext fetches
                reading.set()


async def _leak_async(db: Database, *, lazily: bool) -> None:
    await session(db).__aenter__()
    await anext(await _stream("leaked", lazily=lazily))


def rss_kib() -> int:
    """Resident memory now (not the peak)."""
    with open("/proc/self/statm") as f:  # noqa: PTH123 - a one-line read of a proc file
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def cyclic_garbage() -> int:
    """pgdecor and psycopg objects only the cyclic collector would free."""
    return collect()[0]


def collect() -> tuple[int, int]:
    """What only the cyclic collector would free: pgdecor and psycopg objects, and objects of any kind. It frees
    them, so that the next count starts from nothing."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    found = gc.collect()
    ours = sum(type(o).__module__.startswith(("pgdecor", "psycopg")) for o in gc.garbage)
    gc.garbage.clear()
    gc.set_debug(0)
    gc.collect()  # cleared from gc.garbage, they are still cycles: found again by the next count otherwise
    return ours, found


def run(
    dsn: str, sessions: int, kinds: list[int] | None = None, modes: tuple[str, ...] = ("sync", "async")
) -> dict[str, Any]:
    """*sessions* failing sessions, the *kinds* given (all by default) in turn, shared between the *modes*; what
    memory and the cyclic collector say afterwards."""
    ways = kinds if kinds is not None else list(range(len(KINDS)))
    share = sessions // len(modes)
    marks: dict[str, int] = {}
    tenth = max(1, sessions // 10)

    def counted(n: int) -> None:
        if n + 1 == tenth:
            marks["after_tenth"] = rss_kib()

    gc.collect()
    gc.disable()
    try:
        cyclic_garbage()
        if "sync" in modes:
            with Database(dsn, max_size=2) as db:
                for n in range(share):
                    with contextlib.suppress(Error, psycopg.Error):
                        fail_sync(db, ways[n % len(ways)])
                    counted(n)

        async def main(start: int) -> None:
            async with Database(dsn, max_size=2) as db:
                for n in range(start, start + share):
                    with contextlib.suppress(Error, psycopg.Error):
                        await fail_async(db, ways[n % len(ways)])
                    counted(n)

        if "async" in modes:
            asyncio.run(main(share if "sync" in modes else 0))
        marks["end"] = rss_kib()
        left = cyclic_garbage()
    finally:
        gc.enable()
    return {
        "sessions": share * len(modes),
        "rss_kib_after_first_tenth": marks.get("after_tenth", marks["end"]),
        "rss_kib_at_end": marks["end"],
        "cyclic_objects": left,
    }


class _Marks:
    """Resident memory after the first tenth of *total* steps and at the end, and the cyclic garbage then."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.after_tenth: int | None = None

    def step(self, n: int) -> None:
        if n + 1 == max(1, self.total // 10):
            self.after_tenth = rss_kib()

    def result(self, **what: Any) -> dict[str, Any]:
        end = rss_kib()
        ours, found = collect()
        return {
            **what,
            "rss_kib_after_first_tenth": end if self.after_tenth is None else self.after_tenth,
            "rss_kib_at_end": end,
            "cyclic_objects": ours,
            "unreachable": found,
        }


def run_streams(dsn: str, streams: int, kinds: dict[str, list[str]]) -> list[dict[str, Any]]:
    """*streams* streams of each mode in *kinds*, left the ways it lists for that mode (see `STREAM_KINDS`) in
    turn; what memory and the cyclic collector say after each mode's."""
    results = []
    gc.collect()
    gc.disable()
    try:
        with _leaks_expected():
            if "sync" in kinds:
                results.append(_streams_sync(dsn, streams, kinds["sync"]))
            if "async" in kinds:
                results.append(asyncio.run(_streams_async(dsn, streams, kinds["async"])))
    finally:
        gc.enable()
    return results


def _streams_sync(dsn: str, streams: int, kinds: list[str]) -> dict[str, Any]:
    with Database(dsn, max_size=2) as db:
        for kind in kinds:  # what a first call makes once (the rows' layout, a cursor's adapters) is not counted
            abandon_sync(db, kind)
        with session(db):  # a borrow: the leak guard ends the session left leaked
            divide(1)
        marks = _Marks(streams)
        collect()
        for n in range(streams):
            abandon_sync(db, kinds[n % len(kinds)])
            marks.step(n)
        with session(db):  # the last one left leaked, ended
            divide(1)
        return marks.result(mode="sync", streams=streams, kinds=kinds)


async def _streams_async(dsn: str, streams: int, kinds: list[str]) -> dict[str, Any]:
    async with Database(dsn, max_size=2) as db:
        for kind in kinds:
            for lazily in (False, True):
                await abandon_async(db, kind, lazily=lazily)
        async with session(db):
            await adivide(1)
        marks = _Marks(streams)
        collect()
        for n in range(streams):
            await abandon_async(db, kinds[n % len(kinds)], lazily=n // len(kinds) % 2 == 1)
            marks.step(n)
        async with session(db):  # the last one left leaked, ended
            await adivide(1)
        return marks.result(mode="async", streams=streams, kinds=kinds)


@contextlib.contextmanager
def _leaks_expected() -> Iterator[None]:
    """The leak guard warns of each session it ends: expected here, for the streams left ``leaked``."""
    logger = logging.getLogger("pgdecor")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            yield
    finally:
        logger.setLevel(level)


def stream_kinds(modes: tuple[str, ...], chosen: list[str] | None) -> dict[str, list[str]]:
    """The kinds of streams to leave in each mode: those *chosen* that the mode has, by default every way of
    abandoning a sync stream and every way of cancelling an async one."""
    found = {}
    for mode in modes:
        if chosen is None:
            kinds = ASYNC_ONLY if mode == "async" else [k for k in STREAM_KINDS if k not in ASYNC_ONLY]
        else:
            kinds = [k for k in chosen if mode == "async" or k not in ASYNC_ONLY]
        if kinds:
            found[mode] = kinds
    return found


@contextlib.contextmanager
def _server(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    with temporary_dsn() as made:
        yield made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="a server to use (default: start a throwaway one)")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--kind", choices=KINDS, action="append", help="only this way of failing (repeatable)")
    parser.add_argument("--mode", choices=["sync", "async"], action="append", help="only sync or async ones")
    parser.add_argument("--streams", type=int, help="streams of each mode (default: as many as --sessions; 0: none)")
    parser.add_argument(
        "--stream-kind", choices=STREAM_KINDS, action="append", help="only streams left this way (repeatable)"
    )
    args = parser.parse_args(argv)
    kinds = [KINDS.index(k) for k in args.kind] if args.kind else None
    modes = tuple(args.mode or ("sync", "async"))
    streams = args.sessions if args.streams is None else args.streams
    results: list[dict[str, Any]] = []
    with _server(args.dsn) as dsn:
        if args.sessions:
            results.append(run(dsn, args.sessions, kinds, modes))
        if streams:
            results += run_streams(dsn, streams, stream_kinds(modes, args.stream_kind))
    for result in results:
        print(json.dumps(result))
    for result in results:
        print(_summary(result))
    return 0


def _summary(result: dict[str, Any]) -> str:
    if "mode" in result:
        how = "cancelled" if set(result["kinds"]) <= set(ASYNC_ONLY) else "abandoned"
        what = f"{result['streams']:,} {how} {result['mode']} streams"
        left = f"{result['cyclic_objects']} pgdecor/psycopg objects ({result['unreachable']} objects in all)"
    else:
        what = f"{result['sessions']:,} failing sessions"
        left = f"{result['cyclic_objects']} pgdecor/psycopg objects"
    before, after = result["rss_kib_after_first_tenth"] / 1024, result["rss_kib_at_end"] / 1024
    return (
        f"{what}, collector off: RSS {before:.1f} MiB after the first tenth, {after:.1f} MiB at the end "
        f"({after - before:+.1f} MiB); {left} left for the cyclic collector"
    )


if __name__ == "__main__":
    raise SystemExit(main())
