"""A session's transaction begins with its first statement, in the same round trip, as the session's mode asks;
a session that sends nothing sends neither BEGIN nor COMMIT. Round trips are counted at a proxy (`bench.proxy`)
between the pool and the server.

These are the async sessions' tests; tests/session/test_lease.py, the sync sessions' same tests, is generated from
them by tools/async_to_sync.py."""

from typing import Any, NamedTuple

import psycopg
import pytest

from bench.proxy import Proxy
from pgdecor import ArgumentError, Database, query
from pgdecor._wire.guard import switch
from tests.fix_proxy import round_trips, through


@query("SELECT %(n)s::int")
async def echo(n: int) -> int: ...


class Settings(NamedTuple):
    isolation: str
    read_only: str


@query("SELECT pg_catalog.pg_backend_pid()")
async def backend() -> int: ...


@query(
    "SELECT pg_catalog.current_setting('transaction_isolation') AS isolation, "
    "pg_catalog.current_setting('transaction_read_only') AS read_only"
)
async def settings() -> Settings: ...


@pytest.mark.parametrize("calls", [1, 3])
async def test_a_session_of_sequential_calls_costs_one_round_trip_each_and_its_commit(
    pg_dsn: str, proxy: Proxy, calls: int
) -> None:
    """On a warm pooled connection, a session of k calls costs k + 1 round trips: its BEGIN goes with the first
    call's statement, whose answer is the connection's check at borrow; a batch (``.many()``) likewise."""
    async with Database(through(pg_dsn, proxy), max_size=1) as db:
        async with db.session():  # the statements prepared, the connection's wire tested
            assert [await echo(n) for n in range(3)] == [0, 1, 2]
            assert await echo.many([(1,), (2,)]) == [1, 2]
        # Through cursors alone (the fast path off), the same, but psycopg's executemany reads its pipeline after a
        # Flush, then its Sync.
        one_by_one, batch = (calls + 1, 2) if switch.on else (calls + 1, 3)
        before = round_trips(proxy)
        async with db.session():
            assert [await echo(n) for n in range(calls)] == list(range(calls))
        assert round_trips(proxy) - before == one_by_one
        before = round_trips(proxy)
        async with db.session():
            assert await echo.many([(n,) for n in range(calls + 1)]) == list(range(calls + 1))
        assert round_trips(proxy) - before == batch


async def test_a_first_statement_sent_through_a_cursor_carries_the_begin_too(pg_dsn: str, proxy: Proxy) -> None:
    """A session whose first call goes through a cursor (its statement new on the connection) sends the BEGIN in
    one pipeline with it, whose answer pays the check its borrow left to it: that statement, COMMIT; and what
    follows is in the same transaction."""

    @query("SELECT pg_catalog.txid_current()")
    async def transaction_id() -> int: ...

    @query("SELECT pg_catalog.txid_current() AS id")
    async def same_transaction_id() -> int: ...

    async with Database(through(pg_dsn, proxy), max_size=1) as db:
        async with db.session():  # the connection's wire tested
            assert [await echo(n) for n in range(3)] == [0, 1, 2]
        before = round_trips(proxy)
        async with db.session():
            first = await transaction_id()
        assert round_trips(proxy) - before == 2
        async with db.session():
            first = await same_transaction_id()
            assert await transaction_id() == first


async def test_a_first_statement_slow_to_send_has_the_connections_check_made_first(pg_dsn: str, proxy: Proxy) -> None:
    """A first statement whose parameters take time to send (64 KiB of text) has the check its borrow left to it made
    first, a round trip of its own, as the pool would have made it: the answer to the BEGIN sent with it would be
    read only once it is sent, perhaps after the check's deadline. A light one pays the check with that answer; a
    batch likewise."""

    @query("SELECT pg_catalog.length(%(s)s)")
    async def length(s: str) -> int: ...

    async with Database(through(pg_dsn, proxy), max_size=1) as db:
        async with db.session():  # the statement prepared, the connection's wire tested
            assert [await length("x") for _ in range(3)] == [1, 1, 1]
            assert await length.many([("x",), ("y",)]) == [1, 1]
        trips = []
        for text in ("x" * 10, "x" * 65536):
            before = round_trips(proxy)
            async with db.session():
                assert await length(text) == len(text)
            trips.append(round_trips(proxy) - before)
            before = round_trips(proxy)
            async with db.session():
                assert await length.many([(text,), ("y",)]) == [len(text), 1]
            trips.append(round_trips(proxy) - before)
    # Through cursors alone, psycopg's executemany reads its pipeline after a Flush, then its Sync.
    assert trips == ([2, 2, 3, 3] if switch.on else [2, 3, 3, 4])


async def test_a_session_that_sends_nothing_costs_no_round_trip(pg_dsn: str, proxy: Proxy) -> None:
    """A session that borrowed its connection but sent no statement (an empty batch) neither begins nor commits a
    transaction; one whose call is refused before sending does not either."""
    async with Database(through(pg_dsn, proxy), max_size=1) as db:
        async with db.session():
            assert await echo(1) == 1
        before = round_trips(proxy)
        async with db.session():
            assert await echo.many([]) == []
        with pytest.raises(ArgumentError):
            async with db.session():
                await echo("one")  # type: ignore[arg-type]
        assert round_trips(proxy) == before
        assert db.counters.committed == 2


async def test_the_transaction_begun_with_the_first_statement_is_the_one_the_session_asks_for(pg_dsn: str) -> None:
    """Begun in the first call's round trip, the transaction has the session's isolation level and read-only
    setting (the first statement sees them), and a session of the default mode gets the server's defaults."""
    async with Database(pg_dsn, max_size=1) as db:
        async with db.session():
            assert await settings() == ("read committed", "off")
            assert await settings() == ("read committed", "off")  # through the wire from now on
        async with db.session(isolation="serializable", readonly=True):
            assert await settings() == ("serializable", "on")
        async with db.session():
            assert await settings() == ("read committed", "off")


async def test_a_connection_the_server_ended_while_it_sat_in_the_pool_is_replaced_at_its_borrow(
    pg_dsn: str, admin: psycopg.Connection[Any]
) -> None:
    """A connection given back moments ago is handed out unchecked only if its socket has nothing to read: one whose
    backend the server ended meanwhile (it says so on the socket) is checked, and replaced by the pool; the session
    runs."""
    async with Database(pg_dsn, max_size=1) as db:
        async with db.session():
            pid = await backend()
        admin.execute("SELECT pg_catalog.pg_terminate_backend(%s)", [pid])
        while admin.execute("SELECT 1 FROM pg_catalog.pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            pass
        async with db.session():
            assert await backend() != pid
        assert db.counters.rolled_back == 0


async def test_the_connection_handed_out_inside_a_begun_transaction_refuses_a_commit_of_the_users(pg_dsn: str) -> None:
    """The session's connection, handed to the user (``connection()``) after its calls began the transaction with
    their first statement, refuses a COMMIT of the user's, as inside a transaction block of psycopg's: the
    session's work commits at its end, all of it, or none."""

    @query("SELECT %(n)s::int + 1")
    async def succ(n: int) -> int: ...

    async with Database(pg_dsn, max_size=1) as db:
        async with db.session():
            assert [await echo(n) for n in range(3)] == [0, 1, 2]
        for first in (succ, echo):  # the first statement through a cursor (new on the connection), then the wire
            async with db.session() as sess:
                assert await first(1) >= 1
                conn = await sess.aconnection()
                with pytest.raises(psycopg.ProgrammingError, match="commit"):
                    await conn.commit()
                assert await echo(2) == 2
        assert db.counters.committed == 3
