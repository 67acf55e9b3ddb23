"""Behind a transaction pooler, no call ever returns another statement's result: the pooler is found by what it
does (the backend pid it reports is not the server's), whatever port it listens on."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from pgdecor import Database, query, session
from pgdecor._cli.generate import generate
from tests.utils.pgbouncer import pgbouncer

SESSIONS = 40
CALLS = 12
CLIENTS = 6


@query("SELECT -%(n)s::int")
def negate(n: int) -> int: ...


@query("SELECT %(n)s::int + 1000000")
def plus_million(n: int) -> int: ...


@query("SELECT %(n)s::int * 2")
def double(n: int) -> int: ...


@query("SELECT current_setting('idle_in_transaction_session_timeout')")
def idle_timeout() -> str: ...


@query("SELECT current_setting('idle_in_transaction_session_timeout')")
async def aidle_timeout() -> str: ...


STUBS: list[tuple[Callable[[int], int], Callable[[int], int]]] = [
    (negate, lambda n: -n),
    (plus_million, lambda n: n + 1000000),
    (double, lambda n: n * 2),
]


@pytest.fixture
def bouncer(pg_server_dsn: str) -> Iterator[str]:
    """PgBouncer on the server's own port number, in another socket directory: a port comparison sees nothing."""
    port = int(conninfo_to_dict(pg_server_dsn).get("port") or 5432)
    with pgbouncer(pg_server_dsn, port=port) as dsn:
        yield dsn


def _load(source: Any) -> tuple[int, int, int]:
    """Concurrent sessions calling three statements past psycopg's prepare threshold: (right, wrong, failed)."""
    counts = [0, 0, 0]
    lock = threading.Lock()

    def client(k: int) -> None:
        for s in range(SESSIONS):
            right = wrong = failed = 0
            try:
                with session(source() if callable(source) else source):
                    for i in range(CALLS):
                        stub, expected = STUBS[(k + s + i) % len(STUBS)]
                        n = k * 10000 + s * 100 + i
                        if stub(n) == expected(n):
                            right += 1
                        else:
                            wrong += 1
            except psycopg.Error:
                failed += 1
            with lock:
                counts[0] += right
                counts[1] += wrong
                counts[2] += failed

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts[0], counts[1], counts[2]


@pytest.mark.slow
def test_database_behind_pgbouncer_on_the_same_port_never_returns_another_statements_result(
    bouncer: str, figures: Callable[[str], None]
) -> None:
    with Database(bouncer, max_size=CLIENTS) as db:
        right, wrong, failed = _load(db)
        assert db.pooler is True
    figures(f"Database: {right} right, {wrong} wrong, {failed} failed sessions")
    assert (right, wrong, failed) == (CLIENTS * SESSIONS * CALLS, 0, 0)


@pytest.mark.slow
def test_conninfo_and_users_pool_behind_pgbouncer_are_detected_too(bouncer: str) -> None:
    """Sessions on a conninfo string, and on a pool of the user's, are probed the same way."""
    assert _load(bouncer) == (CLIENTS * SESSIONS * CALLS, 0, 0)
    with ConnectionPool(bouncer, min_size=1, max_size=CLIENTS, kwargs={"autocommit": True}) as pool:
        assert _load(pool) == (CLIENTS * SESSIONS * CALLS, 0, 0)


def test_prepare_true_behind_a_pooler_without_support_errs_but_never_answers_wrong(
    bouncer: str, figures: Callable[[str], None]
) -> None:
    """Told the pooler supports prepared statements when it does not (PgBouncer 1.18): calls may fail ("prepared
    statement does not exist"), but a call never gets another statement's rows."""
    with Database(bouncer, max_size=CLIENTS, prepare=True) as db:
        right, wrong, failed = _load(db)
    figures(f"prepare=True: {right} right, {wrong} wrong, {failed} failed sessions")
    assert wrong == 0
    assert right > 0


def test_direct_connections_keep_prepared_statements(pg_server_dsn: str) -> None:
    with Database(pg_server_dsn, max_size=1) as db, db.session() as sess:
        for i in range(8):
            assert negate(i) == -i
        assert db.pooler is False
        assert sess.connection().prepare_threshold is not None


#: The idle-in-transaction backstop of the sessions that share PgBouncer's server connection with another client.
BACKSTOP = 0.2


@pytest.fixture
def shared_bouncer(pg_server_dsn: str) -> Iterator[str]:
    """PgBouncer with one server connection: every client's transactions run on the same backend, in turn."""
    with pgbouncer(pg_server_dsn, pool_size=1) as dsn:
        yield dsn


def _idle_in_transaction_for(admin: psycopg.Connection[Any], pid: int, at_least: float) -> float:
    """Seconds backend *pid* has been idle in transaction, once that is at least *at_least*; fails if it is ended."""
    deadline = time.monotonic() + 10
    while True:
        row = admin.execute(
            "SELECT extract(epoch FROM clock_timestamp() - state_change)::float8 FROM pg_stat_activity "
            "WHERE pid = %s AND state = 'idle in transaction'",
            [pid],
        ).fetchone()
        assert row is not None, f"backend {pid} is no longer idle in transaction: it was ended"
        if row[0] >= at_least or time.monotonic() > deadline:
            return float(row[0])
        time.sleep(0.02)


@pytest.mark.slow
def test_nothing_pgdecor_sets_outlives_its_transaction_behind_a_pooler(
    shared_bouncer: str, pg_server_dsn: str, admin: psycopg.Connection[Any], figures: Callable[[str], None]
) -> None:
    """Another application's transaction on the pooler's server connection that pgdecor's sessions (sync and async,
    on a Database and on a conninfo) and `generate` used keeps the server's settings, and is not ended when it
    stays idle longer than pgdecor's idle-in-transaction backstop, which connections to the server itself keep."""
    with Database(shared_bouncer, max_size=2, idle_in_transaction_timeout=BACKSTOP) as db:
        for _ in range(3):
            with db.session():
                idle_timeout()
        assert db.pooler is True

    async def sessions() -> None:
        async with Database(shared_bouncer, max_size=2, idle_in_transaction_timeout=BACKSTOP) as adb, adb.session():
            await aidle_timeout()
        async with session(shared_bouncer):
            await aidle_timeout()

    asyncio.run(sessions())
    with session(shared_bouncer):
        idle_timeout()
    generate(shared_bouncer, "public")
    default = admin.execute("SHOW idle_in_transaction_session_timeout").fetchone()
    with psycopg.connect(shared_bouncer) as other:  # another application: its statements run in a transaction
        row = other.execute(
            "SELECT current_setting('idle_in_transaction_session_timeout'), "
            "current_setting('default_transaction_read_only'), pg_backend_pid()"
        ).fetchone()
        assert row is not None
        assert row[:2] == (default[0] if default else None, "off")
        held = _idle_in_transaction_for(admin, row[2], 4 * BACKSTOP)
        assert other.execute("SELECT 1").fetchone() == (1,)  # its transaction lives on
    figures(f"another client idle in transaction {held:.2f} s past a {BACKSTOP} s backstop: not ended")
    assert held >= 4 * BACKSTOP
    with Database(pg_server_dsn, max_size=1, idle_in_transaction_timeout=BACKSTOP) as direct, direct.session():
        assert idle_timeout() == "200ms"  # where no pooler is in between, the backstop is there
        assert direct.pooler is False
