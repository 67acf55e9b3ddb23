"""Failing sessions, many of them, with the cyclic garbage collector off: memory must stay flat.

    python -m bench.failing                   # 10,000 sessions on a throwaway server
    python -m bench.failing --sessions 1000 --dsn postgresql:///app

Each session fails another way (a database error, one caught by the code, one inside a savepoint, its backend
terminated, rows that do not fit the return type), half of them sync, half async. The report gives the resident
memory after the first tenth and at the end, and the pgdecor/psycopg objects that only the cyclic collector could
free (which must be none).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from pgdecor import Database, Error, query, session, transaction
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


def rss_kib() -> int:
    """Resident memory now (not the peak)."""
    with open("/proc/self/statm") as f:  # noqa: PTH123 - a one-line read of a proc file
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def cyclic_garbage() -> int:
    """pgdecor and psycopg objects only the cyclic collector would free."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    found = sum(type(o).__module__.startswith(("pgdecor", "psycopg")) for o in gc.garbage)
    gc.garbage.clear()
    gc.set_debug(0)
    return found


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
    parser.add_argument("--mode", choices=["sync", "async"], action="append", help="only sync or async sessions")
    args = parser.parse_args(argv)
    kinds = [KINDS.index(k) for k in args.kind] if args.kind else None
    with _server(args.dsn) as dsn:
        result = run(dsn, args.sessions, kinds, tuple(args.mode or ("sync", "async")))
    growth = (result["rss_kib_at_end"] - result["rss_kib_after_first_tenth"]) / 1024
    print(json.dumps(result))
    print(
        f"{result['sessions']:,} failing sessions, collector off: RSS {result['rss_kib_after_first_tenth'] / 1024:.1f}"
        f" MiB after the first tenth, {result['rss_kib_at_end'] / 1024:.1f} MiB at the end ({growth:+.1f} MiB); "
        f"{result['cyclic_objects']} pgdecor/psycopg objects left for the cyclic collector"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
