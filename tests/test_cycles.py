"""Failing calls leave no reference cycles: with the cyclic collector off (as the suite runs), everything a failed
session used is freed by reference counting at once, so nothing waits for the garbage collector."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest

from pgdecor import Database, Error, query, session, transaction


@dataclass
class Point:
    x: int


@query("SELECT 1 / %(d)s")
def divide(d: int) -> int: ...


@query("SELECT 1 / %(d)s")
async def adivide(d: int) -> int: ...


@query("SELECT 'text' AS y")
def wrong_columns() -> Point: ...


@query("SELECT 'text' AS y")
async def awrong_columns() -> Point: ...


@query("SELECT 1 WHERE false")
def nothing() -> int: ...


@query("SELECT 1 WHERE false")
async def anothing() -> int: ...


@query("SELECT pg_terminate_backend(pg_backend_pid())")
def die() -> bool: ...


@query("SELECT pg_terminate_backend(pg_backend_pid())")
async def adie() -> bool: ...


def _sync_cases(db: Database) -> dict[str, Callable[[], None]]:
    def db_error() -> None:
        with session(db):
            divide(0)

    def caught() -> None:
        with session(db), contextlib.suppress(psycopg.Error):
            divide(0)

    def savepoint() -> None:
        with session(db), contextlib.suppress(psycopg.Error), transaction():
            divide(0)

    def killed() -> None:
        with session(db):
            die()

    def mapping() -> None:
        with session(db):
            wrong_columns()

    def not_found() -> None:
        with session(db):
            nothing()

    return {
        "db error": db_error,
        "caught error": caught,
        "savepoint error": savepoint,
        "killed backend": killed,
        "mapping error": mapping,
        "not found": not_found,
    }


def _async_cases(db: Database) -> dict[str, Callable[[], Awaitable[None]]]:
    async def db_error() -> None:
        async with session(db):
            await adivide(0)

    async def caught() -> None:
        async with session(db):
            with contextlib.suppress(psycopg.Error):
                await adivide(0)

    async def savepoint() -> None:
        async with session(db):
            with contextlib.suppress(psycopg.Error):
                async with transaction():
                    await adivide(0)

    async def killed() -> None:
        async with session(db):
            await adie()

    async def mapping() -> None:
        async with session(db):
            await awrong_columns()

    async def not_found() -> None:
        async with session(db):
            await anothing()

    return {
        "db error": db_error,
        "caught error": caught,
        "savepoint error": savepoint,
        "killed backend": killed,
        "mapping error": mapping,
        "not found": not_found,
    }


CASES = ["db error", "caught error", "savepoint error", "killed backend", "mapping error", "not found"]
ROUNDS = 30


@pytest.fixture
def garbage() -> Iterator[Callable[[], list[str]]]:
    """The pgdecor and psycopg objects only the cyclic collector would free, since the fixture started."""
    assert not gc.isenabled()  # the suite runs with the collector off (conftest)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)

    def found() -> list[str]:
        gc.collect()
        names = [f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage]
        gc.garbage.clear()
        return [n for n in names if n.startswith(("pgdecor", "psycopg"))]

    try:
        yield found
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.mark.parametrize("case", CASES)
def test_failing_sync_sessions_leave_no_cycles(
    users: str, case: str, garbage: Callable[[], list[str]], figures: Callable[[str], None]
) -> None:
    with Database(users, max_size=1) as db:
        run = _sync_cases(db)[case]
        for _ in range(3):  # first calls resolve and cache what later calls reuse
            with contextlib.suppress(Error, psycopg.Error):
                run()
        garbage()
        for _ in range(ROUNDS):
            with contextlib.suppress(Error, psycopg.Error):
                run()
        left = garbage()
    figures(f"{case}: {len(left)} cyclic pgdecor/psycopg objects after {ROUNDS} failing sync sessions")
    assert left == []


@pytest.mark.parametrize("case", CASES)
def test_failing_async_sessions_leave_no_cycles(
    users: str, case: str, garbage: Callable[[], list[str]], figures: Callable[[str], None]
) -> None:
    async def main() -> list[str]:
        async with Database(users, max_size=1) as db:
            run = _async_cases(db)[case]
            for _ in range(3):
                with contextlib.suppress(Error, psycopg.Error):
                    await run()
            garbage()
            for _ in range(ROUNDS):
                with contextlib.suppress(Error, psycopg.Error):
                    await run()
            return garbage()

    left = asyncio.run(main())
    figures(f"{case}: {len(left)} cyclic pgdecor/psycopg objects after {ROUNDS} failing async sessions")
    assert left == []
