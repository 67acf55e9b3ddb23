"""The least an async call through libpq does on asyncio's loop: a contender that bounds what any client built on
libpq can reach, pgdecor's fast path included.

It executes a statement it prepared itself, binary in and out, waits on the connection's socket registered once with
the loop, and makes the row's dataclass with psycopg's loaders: no session, no lock, no prepare manager, no checks of
what comes back. Its ratio to asyncpg is the ceiling of pgdecor's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer

__all__ = ["LibpqFloor"]

_NAME = b"bench_floor"
_TUPLES_OK = pq.ExecStatus.TUPLES_OK


class LibpqFloor:
    """One connection's hand-written calls of *sql* (one int parameter, one row or none), made into *row*."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], sql: str, row: Callable[..., Any]) -> None:
        self.conn, self.sql, self.row = conn, sql, row
        self.tx = Transformer(conn)
        self.fut: asyncio.Future[None] | None = None

    async def prepare(self) -> None:
        await self.conn.execute(f"PREPARE bench_floor (int) AS {self.sql}")

    async def calls(self, ids: list[int]) -> None:
        """A transaction of one call per id, as the other contenders' are."""
        pgconn, tx, row = self.conn.pgconn, self.tx, self.row
        loop = asyncio.get_running_loop()
        loop.add_reader(pgconn.socket, self._readable)
        try:
            await self._run(b"BEGIN")
            for i in ids:
                pgconn.send_query_prepared(_NAME, [i.to_bytes(4, "big", signed=True)], [pq.Format.BINARY], 1)
                res = await self._result()
                tx.set_pgresult(res)
                if res.ntuples:
                    row(*tx.load_row(0, tuple))
            await self._run(b"COMMIT")
        finally:
            loop.remove_reader(pgconn.socket)

    async def _run(self, command: bytes) -> None:
        self.conn.pgconn.send_query(command)
        await self._result()

    async def _result(self) -> pq.abc.PGresult:
        pgconn = self.conn.pgconn
        pgconn.flush()
        while pgconn.is_busy():
            self.fut = asyncio.get_running_loop().create_future()
            await self.fut
        res = pgconn.get_result()
        assert res is not None
        while pgconn.get_result() is not None:
            pass
        if res.status not in (_TUPLES_OK, pq.ExecStatus.COMMAND_OK):
            raise psycopg.errors.error_from_result(res)
        return res

    def _readable(self) -> None:
        pgconn = self.conn.pgconn
        pgconn.consume_input()
        if not pgconn.is_busy() and self.fut is not None and not self.fut.done():
            self.fut.set_result(None)
