"""A command stub annotated ``-> int`` returns the number of rows the command affected (as aiosql's ``!``, or a
driver's ``rowcount``), on every path a call takes: the first call, the calls after it, a batch; `check` agrees,
and a command that gives no count says so.

These are the async stubs' tests; tests/run/test_affected.py, the sync stubs' same tests, is generated from them by
tools/async_to_sync.py."""

from __future__ import annotations

import pytest

from pgdecor import MappingError, check, query, session
from tests.fix_db import Exec


@query("UPDATE counters SET n = n + 1 WHERE n >= %(least)s")
async def bump(least: int) -> int: ...


@query("DELETE FROM counters WHERE n > %(most)s")
async def trim(most: int) -> None: ...


@query("INSERT INTO counters SELECT g FROM generate_series(1, %(k)s) g")
async def fill(k: int) -> int: ...


@query("CREATE TEMP TABLE scratch (x int)")
async def scratch() -> int: ...


@query("UPDATE counters SET n = n WHERE n > %(least)s RETURNING n")
async def returned(least: int) -> int | None: ...


@pytest.fixture
def counters(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec("CREATE TABLE counters (n int NOT NULL); INSERT INTO counters VALUES (1), (2), (3)")
    return pg_dsn


async def test_a_command_annotated_int_returns_the_rows_it_affected(counters: str) -> None:
    """The count of each call, the first (looked up) and the later ones (the lean path), a batch's each."""
    async with session(counters):
        assert [await bump(2), await bump(2), await bump(100)] == [2, 2, 0]
        assert await bump.many([(1,), (5,)]) == [3, 2]
        assert await fill(4) == 4
        assert await bump.many([(1,), (5,), (1000,)]) == [7, 3, 0]
        await trim(0)
        assert await bump(0) == 0


async def test_a_command_that_gives_no_count_says_so(counters: str) -> None:
    """A command whose result has no row count (CREATE TABLE) annotated ``-> int`` raises MappingError saying so."""
    async with session(counters):
        with pytest.raises(MappingError, match=r"CREATE TABLE.* gives no number of rows"):
            await scratch()


async def test_check_takes_int_on_a_command_as_its_row_count(counters: str) -> None:
    """`check` reports nothing for these stubs: `-> int` on a command is its row count."""
    assert [p for p in check([__name__], counters) if p.stub != f"{__name__}.scratch"] == []
    async with session(counters):
        assert await returned(2) == 3  # with RETURNING, the row's value as always
