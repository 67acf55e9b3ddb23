"""Bounded waits: a borrow gives up within the Database's timeout when the server stops answering without closing
anything, and the connections pgdecor opens carry TCP keepalives and a user timeout, so that a dropped network
is found within a minute rather than when TCP gives up."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg_pool import PoolTimeout

from pgdecor import Database, procedure, query, session
from pgdecor.testing import TemporaryServer
from tests.utils.pgbouncer import pgbouncer
from tests.utils.servers import free_port

#: Seconds within which a session's first call on a frozen server must raise, with ``Database(timeout=1)``.
BOUND = 5.0
#: Seconds after which a frozen server is continued whatever happens: code that waits for it fails, not hangs.
THAW_AFTER = 20.0
SECRET = "frozen-s3cret"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="finds a server's processes in /proc")


@query("SELECT 1")
def one() -> int: ...


@query("SELECT 1")
async def aone() -> int: ...


def _children(parent: int) -> list[int]:
    """The processes whose parent is *parent*."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:  # the field after the command's name
                found.append(int(entry.name))
    return found


@contextmanager
def frozen(server: TemporaryServer) -> Iterator[None]:
    """Every process of *server* stopped (SIGSTOP): a server that stops answering and closes nothing. They are
    continued at the end, or after `THAW_AFTER` seconds at the latest."""
    assert server.dir is not None
    postmaster = int((server.dir / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGSTOP)  # first: it starts no process from now on
    pids = [postmaster, *_children(postmaster)]
    for pid in pids[1:]:
        os.kill(pid, signal.SIGSTOP)

    def thaw() -> None:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    timer = threading.Timer(THAW_AFTER, thaw)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        thaw()


@pytest.fixture
def server() -> Iterator[TemporaryServer]:
    """A server of the test's own, which it may freeze; its conninfo carries a password, which no message shows."""
    with TemporaryServer() as started:
        yield started


def _check_error(err: BaseException) -> None:
    text = "\n".join([str(err), *getattr(err, "__notes__", [])])
    assert "pgdecor Database" in text
    assert "timeout=1" in text
    assert "did not answer" in text
    assert SECRET not in text


async def _first_call_frozen(
    server: TemporaryServer, call: Callable[[], Awaitable[object]], *, warm: int = 1, autocommit: bool = False
) -> tuple[float, BaseException]:
    """A pooled connection warmed by *warm* calls of `aone`, then *call* as a session's first on the frozen *server*:
    the seconds it took to raise, and what it raised; the pool serves again once the server is thawed."""
    async with Database(make_conninfo(server.dsn, password=SECRET), min_size=1, max_size=1, timeout=1) as db:
        async with db.session(autocommit=autocommit):
            assert [await aone() for _ in range(warm)] == [1] * warm
        with frozen(server):
            started = time.monotonic()
            with pytest.raises(PoolTimeout) as caught:
                async with db.session(autocommit=autocommit):
                    await call()
            took = time.monotonic() - started
        async with db.session(autocommit=autocommit):
            await call()
    return took, caught.value


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.parametrize("warm", [1, 3])
def test_a_borrow_gives_up_within_its_timeout_when_the_server_stops_answering(
    server: TemporaryServer, figures: Callable[[str], None], warm: int
) -> None:
    """With a warm pooled connection and the server frozen, a session's first call raises `PoolTimeout` within a
    bound of ``timeout``, saying what happened, instead of waiting for the server: the check its borrow left to it
    made before the wire's self-test (warmed by one call), or paid by the answer to the BEGIN the wire sends with
    its statement (warmed by three)."""
    with Database(make_conninfo(server.dsn, password=SECRET), min_size=1, max_size=1, timeout=1) as db:
        with db.session():
            assert [one() for _ in range(warm)] == [1] * warm
        with frozen(server):
            started = time.monotonic()
            with pytest.raises(PoolTimeout) as caught, db.session():
                one()
            took = time.monotonic() - started
        with db.session():  # the server answers again: so does the pool
            assert one() == 1
    figures(f"sync, warmed by {warm}: the first call on a frozen server raised after {took:.2f} s with timeout=1")
    assert took < BOUND
    _check_error(caught.value)


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.parametrize("warm", [1, 3])
def test_an_async_borrow_gives_up_within_its_timeout_when_the_server_stops_answering(
    server: TemporaryServer, figures: Callable[[str], None], warm: int
) -> None:
    """The same, for an async Database."""
    took, err = asyncio.run(_first_call_frozen(server, aone, warm=warm))
    figures(f"async, warmed by {warm}: the first call on a frozen server raised after {took:.2f} s with timeout=1")
    assert took < BOUND
    _check_error(err)


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.parametrize("path", ["cursor", "catalog", "batch"])
def test_a_first_call_that_does_not_go_through_the_wire_gives_up_within_the_timeout_too(
    server: TemporaryServer, figures: Callable[[str], None], path: str
) -> None:
    """A connection given back moments ago is handed out without its check, which its call's first statement pays;
    a call whose first statement is not the wire's pays it too, with the answer to the BEGIN sent with a cursor's
    statement (a statement new on the connection; a batch of one), or has it made first (a stub new on the server,
    whose function is looked up in the catalog): on a frozen server, `PoolTimeout` within a bound of ``timeout``,
    as the borrow would have raised."""

    @query("SELECT 2")
    def two() -> int: ...

    @procedure("pg_catalog.upper")
    def upper(s: str) -> str: ...

    with Database(make_conninfo(server.dsn, password=SECRET), min_size=1, max_size=1, timeout=1) as db:
        with db.session():
            assert one() == 1
            assert one.many([()]) == [1]
        with frozen(server):
            started = time.monotonic()
            with pytest.raises(PoolTimeout) as caught, db.session():
                if path == "cursor":
                    two()
                elif path == "catalog":
                    upper("a")
                else:
                    one.many([()])
            took = time.monotonic() - started
        with db.session():
            assert (two(), upper("a")) == (2, "A")
    figures(f"sync: a first call ({path}) on a frozen server raised after {took:.2f} s with timeout=1")
    assert took < BOUND
    _check_error(caught.value)


@pytest.mark.slow
@pytest.mark.timing
def test_an_async_first_call_through_a_cursor_gives_up_within_the_timeout_too(
    server: TemporaryServer, figures: Callable[[str], None]
) -> None:
    """The same, for an async Database's call of a statement new on the connection."""

    @query("SELECT 2")
    async def two() -> int: ...

    took, err = asyncio.run(_first_call_frozen(server, two))
    figures(f"async: a first call (cursor) on a frozen server raised after {took:.2f} s with timeout=1")
    assert took < BOUND
    _check_error(err)


@pytest.mark.slow
@pytest.mark.timing
def test_an_autocommit_sessions_first_call_gives_up_within_the_timeout_too(
    server: TemporaryServer, figures: Callable[[str], None]
) -> None:
    """An autocommit session's first call sends no BEGIN whose answer could pay the check its borrow left to it: the
    check is made first, so that on a frozen server it raises `PoolTimeout` within a bound of ``timeout``, sync and
    async, through the wire."""

    with Database(make_conninfo(server.dsn, password=SECRET), min_size=1, max_size=1, timeout=1) as db:
        for _ in range(3):
            with db.session(autocommit=True):
                assert one() == 1
        with frozen(server):
            started = time.monotonic()
            with pytest.raises(PoolTimeout) as caught, db.session(autocommit=True):
                one()
            took = time.monotonic() - started
        with db.session(autocommit=True):
            assert one() == 1
    figures(f"sync autocommit: the first call on a frozen server raised after {took:.2f} s with timeout=1")
    assert took < BOUND
    _check_error(caught.value)
    took, err = asyncio.run(_first_call_frozen(server, aone, warm=3, autocommit=True))
    figures(f"async autocommit: the first call on a frozen server raised after {took:.2f} s with timeout=1")
    assert took < BOUND
    _check_error(err)


@pytest.mark.slow
@pytest.mark.timing
def test_a_first_call_cancelled_on_a_frozen_server_ends_with_its_check(server: TemporaryServer) -> None:
    """A first call cut short (`asyncio.wait_for`) while a frozen server owes the answer that pays its connection's
    check ends once the check's deadline has ended the connection, without waiting for a stop request the frozen
    server cannot answer either; through a cursor (a statement new on the connection) as through the wire."""

    @query("SELECT 2")
    async def two() -> int: ...

    async def scenario() -> list[float]:
        took = []
        async with Database(make_conninfo(server.dsn, password=SECRET), min_size=1, max_size=1, timeout=1) as db:
            for call in (two, aone):
                async with db.session():
                    assert [await aone() for _ in range(3)] == [1, 1, 1]
                with frozen(server):
                    started = time.monotonic()
                    with pytest.raises((PoolTimeout, TimeoutError)):
                        async with db.session():
                            await asyncio.wait_for(call(), 0.3)
                    took.append(time.monotonic() - started)
        return took

    took = asyncio.run(scenario())
    assert max(took) < 3.0, took


@pytest.mark.slow
def test_a_first_statement_that_outlasts_the_borrows_timeout_is_not_taken_for_an_unanswered_check(
    pg_dsn: str,
) -> None:
    """The check a connection is owed is paid by the answer to the BEGIN sent with its first statement, not by the
    statement's: one that runs past the borrow's deadline completes, through the wire and through a cursor (its
    statement new on the connection), sync and async, and the transaction commits."""

    @query("SELECT pg_catalog.pg_sleep(1.3)::text")
    def slow() -> str: ...

    @query("SELECT pg_catalog.pg_sleep(1.3)::text")
    async def aslow() -> str: ...

    with Database(pg_dsn, min_size=1, max_size=1, timeout=1) as db:
        for _ in range(2):  # through a cursor, then through the wire
            with db.session():
                assert one() == 1  # the connection warm: handed out owing its check
            with db.session():
                assert slow() == ""

    async def scenario() -> None:
        async with Database(pg_dsn, min_size=1, max_size=1, timeout=1) as adb:
            for _ in range(2):
                async with adb.session():
                    assert await aone() == 1
                async with adb.session():
                    assert await aslow() == ""

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_first_call_whose_answer_is_read_after_the_borrows_deadline_does_not_leave_its_commit_unknown(
    server: TemporaryServer,
) -> None:
    """The answer to the BEGIN sent with a first statement through a cursor reaches the client before the borrow's
    deadline, but the event loop reads it only after (a task's work that does not await holds the loop): the call
    either raises `PoolTimeout`, as its borrow would have, or its session commits; it never returns its value on a
    connection the check ended, for the session's COMMIT to fail as unknown."""

    @query("SELECT 2")
    async def two() -> int: ...

    async def scenario() -> None:
        async with Database(server.dsn, min_size=1, max_size=1, timeout=1) as db:
            async with db.session() as s:
                assert await aone() == 1
                conn = await s.aconnection()
                pid = conn.info.backend_pid
            ice = frozen(server)

            async def hold_the_loop() -> None:
                # A state of libpq's, which no event tells: the call's pipeline begun.
                while conn.pgconn.pipeline_status == psycopg.pq.PipelineStatus.OFF:  # noqa: ASYNC110
                    await asyncio.sleep(0)
                for _ in range(50):  # its BEGIN, statement and Sync sent, to a server that reads nothing
                    await asyncio.sleep(0)
                ice.__exit__(None, None, None)  # the server answers at once from now on, and the loop is held
                with psycopg.connect(server.dsn, autocommit=True) as admin:
                    until = time.monotonic() + BOUND  # until the check's watchdog has ended the connection, if it does
                    while (
                        time.monotonic() < until
                        and admin.execute(
                            "SELECT 1 FROM pg_catalog.pg_stat_activity WHERE pid OPERATOR(pg_catalog.=) %s", [pid]
                        ).fetchone()
                    ):
                        pass

            ice.__enter__()
            try:
                async with db.session():
                    got, _ = await asyncio.gather(two(), hold_the_loop())
                assert got == 2
            except PoolTimeout:
                pass
            finally:
                ice.__exit__(None, None, None)
            assert db.counters.as_dict()["commit_unknown"] == 0

    asyncio.run(scenario())


#: What pgdecor sets on the sockets of its connections unless told otherwise, as getsockopt reads them.
DEFAULTS = {"keepalive": 1, "idle": 30, "interval": 10, "count": 3, "user_timeout": 60000}


def _socket_options(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> dict[str, int]:
    """The keepalive options and the user timeout of *conn*'s TCP socket, as the kernel has them."""
    with socket.fromfd(conn.pgconn.socket, socket.AF_INET, socket.SOCK_STREAM) as sock:
        tcp = socket.IPPROTO_TCP
        return {
            "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "idle": sock.getsockopt(tcp, socket.TCP_KEEPIDLE),
            "interval": sock.getsockopt(tcp, socket.TCP_KEEPINTVL),
            "count": sock.getsockopt(tcp, socket.TCP_KEEPCNT),
            "user_timeout": sock.getsockopt(tcp, socket.TCP_USER_TIMEOUT),
        }


@pytest.fixture
def tcp(pg_server_dsn: str) -> Iterator[str]:
    """A DSN over TCP on 127.0.0.1 (PgBouncer's: the test server listens on a unix socket only)."""
    with pgbouncer(pg_server_dsn, port=free_port(), listen_addr="127.0.0.1") as dsn:
        yield dsn


def test_connections_carry_tcp_keepalives_and_a_user_timeout_unless_told_otherwise(tcp: str) -> None:
    """A Database's connections and a conninfo session's carry the keepalive defaults; a value in the conninfo or
    in the keyword arguments wins over them."""
    with Database(tcp, max_size=1) as db, db.session() as s:
        assert _socket_options(s.connection()) == DEFAULTS
    with session(tcp) as s:
        assert _socket_options(s.connection()) == DEFAULTS
    told = make_conninfo(tcp, keepalives_idle=7)
    with Database(told, max_size=1, tcp_user_timeout=1234) as db, db.session() as s:
        assert _socket_options(s.connection()) == {**DEFAULTS, "idle": 7, "user_timeout": 1234}
    with session(make_conninfo(tcp, keepalives_count=5)) as s:
        assert _socket_options(s.connection()) == {**DEFAULTS, "count": 5}

    async def scenario() -> list[dict[str, int]]:
        async with Database(tcp, max_size=1, keepalives_interval=4) as adb, adb.session() as a:
            first = _socket_options(await a.aconnection())
        async with session(tcp) as a:
            return [first, _socket_options(await a.aconnection())]

    assert asyncio.run(scenario()) == [{**DEFAULTS, "interval": 4}, DEFAULTS]
