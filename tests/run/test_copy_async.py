"""Async COPY stubs (`copy_in`, `copy_out` declared `async def`, or `def` returning an `AsyncIterator`): rows in
batches both ways, bad rows named before anything is stored, COPYs in the session's transaction, and misuses that
would otherwise wait for ever. The tests of tests/run/test_copy.py that had no async twin, written as
tools/async_to_sync.py reads an async source (their sync twins are those of test_copy.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable

import psycopg
import pytest

from pgdecor import ArgumentError, Error, MappingError, NoSessionError, copy_in, copy_out, query, session
from tests.fix_db import Exec
from tests.run.test_copy import SCHEMA, _people
from tests.usercode.copy_stubs import Person, WithNickname


@copy_in("people")
async def load_people(rows: Iterable[Person] | AsyncIterable[Person]) -> int: ...


@copy_out("people")
def export_people() -> AsyncIterator[Person]: ...


@copy_out("people")
async def export_people_started() -> AsyncIterator[Person]: ...


@copy_out("people")
def export_nicknames() -> AsyncIterator[WithNickname]: ...


@copy_in("nobody")
async def load_nobody(rows: Iterable[Person]) -> int: ...


@query("SELECT count(*) FROM people")
async def count_people() -> int: ...


@query("TRUNCATE people")
async def _truncate() -> None: ...


@pytest.fixture
def dsn(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(SCHEMA)
    return pg_dsn


async def test_large_copies_stream_in_batches_both_ways(dsn: str) -> None:
    """Rows go in from a generator and come out of a stream a batch at a time, all of them, in order, whatever
    their number against the batch size."""

    async def people(n: int) -> AsyncIterator[Person]:
        for i in range(n):
            yield Person(i, f"person {i}", None if i % 7 == 0 else i % 90)

    for n in (0, 1, 999, 1000, 1001, 2500):
        async with session(dsn):
            assert await load_people(people(n)) == n
            assert [p async for p in export_people()] == [p async for p in people(n)]
            await _truncate()


async def test_a_row_that_is_not_of_the_row_type_is_named(dsn: str) -> None:
    """An object that lacks the row type's fields raises ArgumentError naming its index."""
    rows: list[object] = [Person(1, "ann", 3), None]
    refused = r"rows\[1\] is NoneType None, which has no field of one of the columns"
    with pytest.raises(ArgumentError, match=refused):
        async with session(dsn):
            await load_people(rows)  # type: ignore[arg-type]


async def test_rows_that_are_not_iterable_are_refused_before_anything_is_sent(dsn: str) -> None:
    """A COPY's rows must be iterable: anything else raises ArgumentError naming the parameter."""
    async with session(dsn):
        with pytest.raises(ArgumentError, match=r"argument 'rows' must be an iterable of Person, got int"):
            await load_people(5)  # type: ignore[arg-type]


async def test_a_copy_commits_with_its_session_and_rolls_back_with_its_later_error(dsn: str) -> None:
    """A COPY's rows are stored when its session commits: an error later in the session rolls them back with it."""
    with pytest.raises(ZeroDivisionError):
        async with session(dsn):
            assert await load_people(_people(10, -1)) == 10
            assert await count_people() == 10  # seen inside the session
            _ = 1 / 0
    async with session(dsn):
        assert await count_people() == 0
        await load_people(_people(10, -1))
    async with session(dsn):
        assert await count_people() == 10


async def test_a_call_while_a_stream_is_open_fails_rather_than_waits(dsn: str) -> None:
    """Until a COPY out is read to its end, its connection is busy: another call of the session fails at once, a
    second COPY says why, and the session still ends (rolled back) with its connection usable."""
    async with session(dsn):
        await load_people(_people(2500, -1))
    with pytest.raises(psycopg.OperationalError, match="another command is already in progress"):
        async with session(dsn):
            async for person in export_people():
                if person.id == 1200:
                    await count_people()
    busy = (
        r"load_people\(\): the session's connection is busy with the stream of "
        + re.escape(f"{__name__}.export_people")
        + ", still open"
    )
    with pytest.raises(Error, match=busy):
        async with session(dsn):
            stream = export_people()
            await anext(stream)
            await load_people([])
    async with session(dsn):
        assert await count_people() == 2500


async def test_a_stub_called_for_the_rows_raises_instead_of_waiting_for_ever(dsn: str) -> None:
    """The rows are read while the COPY holds the connection: a stub of the session called to make them raises
    NoSessionError, noted with why, instead of waiting for the connection; rows that are the session's own stream
    are refused before anything is sent."""

    async def rows() -> AsyncIterator[Person]:
        yield Person(await count_people(), "ann", None)

    with pytest.raises(NoSessionError, match="outside any session") as caught:
        async with session(dsn):
            await load_people(rows())
    notes = "\n".join(getattr(caught.value, "__notes__", ()))
    assert "its rows are read while the COPY holds the session's connection" in notes
    with pytest.raises(ArgumentError, match="its rows are a stream of the same session"):
        async with session(dsn):
            await load_people(await export_people_started())


async def test_rows_that_are_a_stream_of_the_session_not_yet_started_are_refused_before_anything_is_sent(
    dsn: str,
) -> None:
    """A stream of the same session given as a COPY's rows is refused before anything is sent, also when it has
    not started yet (a `def` stub's `AsyncIterator` starts at its first read)."""
    with pytest.raises(ArgumentError, match="its rows are a stream of the same session"):
        async with session(dsn):
            await load_people(export_people())


async def test_a_table_that_does_not_fit_the_row_type_is_a_mapping_error(dsn: str) -> None:
    """At the first COPY, a field with no column, or no table at all, raises MappingError naming them."""
    with pytest.raises(MappingError, match=r"table people has no column 'nickname' for field"):
        async with session(dsn):
            [p async for p in export_nicknames()]
    with pytest.raises(MappingError, match=r"there is no table nobody"):
        async with session(dsn):
            await load_nobody([])
