# Generated from tests/run/test_affected_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.run.test_affected_async`, generated from it: see there."""

from __future__ import annotations

import pytest

from pgdecor import MappingError, check, query, session
from tests.fix_db import Exec


@query("UPDATE counters SET n = n + 1 WHERE n >= %(least)s")
def bump(least: int) -> int: ...


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
        assert bump.many([(1,), (5,)]) == [3, 2]
        assert fill(4) == 4
        assert bump.many([(1,), (5,), (1000,)]) == [7, 3, 0]
        trim(0)
        assert bump(0) == 0


def test_a_command_that_gives_no_count_says_so(counters: str) -> None:
    """A command whose result has no row count (CREATE TABLE) annotated ``-> int`` raises MappingError saying so."""
    with session(counters), pytest.raises(MappingError, match=r"CREATE TABLE.* gives no number of rows"):
        scratch()


def test_check_takes_int_on_a_command_as_its_row_count(counters: str) -> None:
    """`check` reports nothing for these stubs: `-> int` on a command is its row count."""
    assert [p for p in check([__name__], counters) if p.stub != f"{__name__}.scratch"] == []
    with session(counters):
        assert returned(2) == 3  # with RETURNING, the row's value as always
