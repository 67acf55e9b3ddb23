"""A command stub annotated ``-> int`` returns the number of rows the command affected (as aiosql's ``!``, or a
driver's ``rowcount``), on every path a call takes: the first call, the calls after it, a batch, sync and async;
`check` agrees, and a command that gives no count says so."""

from __future__ import annotations

import asyncio

import pytest

from pgdecor import MappingError, check, query, session
from tests.fix_db import Exec


@query("UPDATE counters SET n = n + 1 WHERE n >= %(least)s")
def bump(least: int) -> int: ...


@query("UPDATE counters SET n = n + 1 WHERE n >= %(least)s")
async def abump(least: int) -> int: ...


@query("DELETE FROM counters WHERE n > %(most)s")
def trim(most: int) -> None: ...


@query("INSERT INTO counters SELECT g FROM generate_series(1, %(k)s) g")
def fill(k: int) -> int: ...


@query("CREATE TEMP TABLE scratch (x int)")
def scratch() -> int: ...


@query("UPDATE counters SET n = n WHERE n > %(least)s RETURNING n")
def returned(least: int) -> int | None: ...


@pytest.fixture
def counters(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec("CREATE TABLE counters (n int NOT NULL); INSERT INTO counters VALUES (1), (2), (3)")
    return pg_dsn


def test_a_command_annotated_int_returns_the_rows_it_affected(counters: str) -> None:
    """The count of each call, the first (looked up) and the later ones (the lean path), a batch's each."""
    with session(counters):
        assert [bump(2), bump(2), bump(100)] == [2, 2, 0]
        assert fill(4) == 4
        assert bump.many([(1,), (5,), (1000,)]) == [7, 3, 0]
        trim(0)
        assert bump(0) == 0


def test_async_commands_count_the_same_way(counters: str) -> None:
    async def scenario() -> list[int]:
        async with session(counters):
            return [await abump(2), await abump(2), await abump(100), *await abump.many([(1,), (5,)])]

    assert asyncio.run(scenario()) == [2, 2, 0, 3, 2]


def test_a_command_that_gives_no_count_says_so(counters: str) -> None:
    with session(counters), pytest.raises(MappingError, match=r"CREATE TABLE.* gives no number of rows"):
        scratch()


def test_check_takes_int_on_a_command_as_its_row_count(counters: str) -> None:
    """`check` reports nothing for these stubs: `-> int` on a command is its row count."""
    assert [p for p in check([__name__], counters) if p.stub != f"{__name__}.scratch"] == []
    with session(counters):
        assert returned(2) == 3  # with RETURNING, the row's value as always
