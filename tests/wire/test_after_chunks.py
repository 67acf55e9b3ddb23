"""A result read in chunks leaves its connection as it found it: libpq would keep its chunked rows mode for the
first statement of the pipeline entered next, and psycopg's pipelines (a stub's batch through ``executemany``, the
user's own ``executemany`` or ``pipeline()``) would get that statement's rows in chunks they do not expect. These run
psycopg's own pipelines, whose calls differ by kind: each kind is written out."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from pgdecor import query, session
from pgdecor._wire import wire as _wire
from tests.usercode.userdb import User
from tests.wire.test_wire import _expected, echo, made_users
from tests.wire.test_wire_async import echo as aecho

#: Rows of a statement that psycopg runs in its own pipelines below: more than a chunk, were they read in chunks.
_ROWS_SQL = "SELECT %s::int AS n FROM generate_series(1, 1500)"


def _rows_of_each(cur: Any) -> list[tuple[int, int]]:
    """How many rows each result of *cur* has, and the value in them."""
    out = []
    while True:
        rows = cur.fetchall()
        out.append((len(rows), rows[0][0]))
        if not cur.nextset():
            return out


@pytest.mark.parametrize(
    "after", ["a batch of one call", "a batch with wires off", "the user's executemany", "the user's pipeline"]
)
def test_psycopgs_pipelines_right_after_a_result_read_in_chunks_read_their_own_results(
    users: str, chunked_reads: list[int], fresh_switch: Any, after: str
) -> None:
    """psycopg's pipelines run next on the connection get every result whole and right, whether a stub's batch goes
    through psycopg's ``executemany`` (a batch of one call, or any batch once wires are off) or the user runs
    ``executemany`` or ``pipeline()`` on the session's connection; with their statements prepared already, so that
    no Parse comes first to take the mode."""
    with psycopg.connect(users) as conn, session(conn):
        echo.many([(1,), (2,)])
        conn.cursor().executemany(_ROWS_SQL, [(1,), (2,)], returning=True)
        for _ in range(3):
            assert made_users(2000) == _expected(2000)
        if after == "a batch of one call":
            assert echo.many([(7,)]) == [7]
        elif after == "a batch with wires off":
            fresh_switch.on = False
            assert echo.many([(i,) for i in range(1200)]) == list(range(1200))
        elif after == "the user's executemany":
            cur = conn.cursor()
            cur.executemany(_ROWS_SQL, [(3,), (4,)], returning=True)
            assert _rows_of_each(cur) == [(1500, 3), (1500, 4)]
        else:
            with conn.pipeline():
                cur = conn.execute(_ROWS_SQL, [5])
                other = conn.execute("SELECT 6")
            assert (_rows_of_each(cur), other.fetchall()) == ([(1500, 5)], [(6,)])
    assert chunked_reads == ([2] if _wire.CHUNKED_ROWS else [])


def test_async_pipelines_right_after_a_result_read_in_chunks_read_their_own_results(
    users: str, chunked_reads: list[int]
) -> None:
    """As in a sync session: a stub's batch of one call, and the user's own pipeline."""

    @query(
        "SELECT i AS id, 'user ' || i AS name, CASE WHEN i %% 3 = 0 THEN NULL ELSE i || '@example.org' END AS email"
        " FROM generate_series(1, %(n)s) AS i"
    )
    async def amade_users(n: int) -> list[User]: ...

    async def scenario() -> tuple[list[int], list[tuple[int, int]], list[tuple[Any, ...]]]:
        async with await psycopg.AsyncConnection.connect(users) as conn, session(conn):
            await aecho.many([(1,), (2,)])
            await conn.cursor().executemany(_ROWS_SQL, [(1,), (2,)], returning=True)
            for _ in range(3):
                assert await amade_users(2000) == _expected(2000)
            one = await aecho.many([(7,)])
            assert await amade_users(2000) == _expected(2000)
            async with conn.pipeline():
                cur = await conn.execute(_ROWS_SQL, [5])
                other = await conn.execute("SELECT 6")
            return one, [(len(rows), rows[0][0]) for rows in [await cur.fetchall()]], await other.fetchall()

    assert asyncio.run(scenario()) == ([7], [(1500, 5)], [(6,)])
    assert chunked_reads == ([2, 2] if _wire.CHUNKED_ROWS else [])
