"""Services at scale: Database pools, middleware, the leak guard, readonly routing, faults, PgBouncer, soaks."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgdecor import Database, NoSessionError, counters, procedure, query, session
from pgdecor.testing import TemporaryServer, schema_dsn
from tests.fix_db import Exec
from tests.usercode import soak
from tests.usercode.userdb import User, add_user, aget_user, get_user
from tests.utils.pgbouncer import pgbouncer


@query("SELECT current_setting('application_name')", readonly=True)
def which_server() -> str: ...


@query("SELECT current_setting('idle_in_transaction_session_timeout')")
def idle_timeout() -> str: ...


def app_backends(admin: psycopg.Connection[Any], name: str) -> dict[str, int]:
    return soak.backends(admin, name)


@pytest.fixture
def soak_dsn(pg_server_dsn: str) -> str:
    """The soak tables, emptied, in the public schema (reachable through PgBouncer, which drops `options`)."""
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        conn.execute(soak.SCHEMA)
    return pg_server_dsn


# -- Database --------------------------------------------------------------------------------------------


def test_database_owns_a_pool_and_counts_what_sessions_did(users: str) -> None:
    with Database(users, max_size=2) as db:
        with db.session():
            assert get_user(1) == User(1, "ann", "ann@example.org")
            assert idle_timeout() == "1min"
        with pytest.raises(ZeroDivisionError), session(db):
            add_user(7, "x")
            _ = 1 / 0
        with db.session():
            assert get_user(7) is None
        with db.session():
            pass  # no call: nothing borrowed
        assert db.counters.as_dict() == {
            "borrowed": 3,
            "released": 3,
            "committed": 2,
            "rolled_back": 1,
            "commit_unknown": 0,
            "leaked": 0,
        }
    assert counters.borrowed >= 3


def test_database_async(users: str) -> None:
    async def main() -> None:
        async with Database(users, max_size=2, idle_in_transaction_timeout=5) as db:
            async with db.session():
                assert await aget_user(1) == User(1, "ann", "ann@example.org")
            assert db.counters.released == 1

    asyncio.run(main())


def test_closed_database_is_a_clear_error(users: str) -> None:
    db = Database(users)
    with pytest.raises(NoSessionError, match=r"is not open .* open it with `with Database\(...\)` first"), db.session():
        get_user(1)


# -- readonly routing ------------------------------------------------------------------------------------


def test_readonly_stubs_run_on_the_replica_until_the_session_writes(users: str) -> None:
    primary = make_conninfo(users, application_name="primary")
    replica = make_conninfo(users, application_name="replica")
    with session(primary, replica=replica):
        assert which_server() == "replica"
        add_user(8, "eve")  # a write: from now on the session reads where it wrote
        assert which_server() == "primary"
    with Database(primary, replica=replica, max_size=1) as db, db.session():
        assert which_server() == "replica"
        assert get_user(1) is not None  # not readonly: the primary
        assert which_server() == "primary"


# -- the leak guard --------------------------------------------------------------------------------------


def _pool_idle(db: Database) -> int:
    return int(db.pool.get_stats()["pool_available"])


def test_abandoned_generator_session_is_rolled_back_with_a_warning(users: str) -> None:
    with Database(users, min_size=1, max_size=1) as db:

        def rows() -> Iterator[int]:
            with db.session():
                add_user(9, "gen")
                yield 1
                yield 2

        gen = rows()
        assert next(gen) == 1
        with pytest.warns(ResourceWarning, match=r"opened at .*test_database.py:\d+ was not ended by its block"):
            del gen  # refcounting closes it: no garbage collector involved
        assert db.counters.leaked == 1
        assert db.counters.rolled_back == 1
        with db.session():
            assert get_user(9) is None


def test_session_of_a_dead_thread_is_reaped_at_the_next_borrow(users: str, admin: psycopg.Connection[Any]) -> None:
    name = "reap_thread"
    with Database(make_conninfo(users, application_name=name), min_size=0, max_size=1) as db:

        def leak() -> None:
            session(db).__enter__()  # never exited
            add_user(10, "thread")

        thread = threading.Thread(target=leak)
        thread.start()
        thread.join()
        assert app_backends(admin, name) == {"idle in transaction": 1}
        with pytest.warns(ResourceWarning, match="its thread ended"), db.session():
            assert get_user(10) is None  # the one connection came back, rolled back
        assert db.counters.leaked == 1
        assert db.counters.borrowed == db.counters.released
        assert app_backends(admin, name) == {"idle": 1}


def test_session_of_a_finished_task_is_reaped(users: str) -> None:
    async def main() -> None:
        async with Database(users, min_size=0, max_size=1) as db:

            async def leak() -> None:
                await session(db).__aenter__()  # never exited
                await aget_user(1)

            await asyncio.create_task(leak())
            with pytest.warns(ResourceWarning, match="its task ended"):
                assert await db.areap() == 1
            assert _pool_idle_async(db) == 1

    def _pool_idle_async(db: Database) -> int:
        return int(db.apool.get_stats()["pool_available"])

    asyncio.run(main())


def test_session_idle_in_transaction_past_the_leak_timeout_is_reaped(users: str) -> None:
    with Database(users, max_size=1, leak_timeout=0.0) as db:
        held = session(db)  # a session kept alive by something that never ends it
        held.__enter__()
        get_user(1)
        assert db.reap() == 0  # first sight of its activity
        with pytest.warns(ResourceWarning, match="idle in transaction past the leak timeout"):
            assert db.reap() == 1
        with pytest.raises(NoSessionError, match="has ended"):
            get_user(1)
        held.__exit__(None, None, None)
        assert _pool_idle(db) == 1
        with pytest.raises(NoSessionError, match="outside any session"):  # its block left the context as it was
            get_user(1)


def test_a_session_the_leak_guard_ended_says_so_when_it_is_used(users: str) -> None:
    """A call in a session the leak guard ended (idle in transaction past the leak timeout) raises `NoSessionError`
    naming the leak guard, why it ends sessions, and the setting that gives them longer."""
    with Database(users, max_size=1, leak_timeout=0.0) as db:
        held = session(db)
        held.__enter__()
        get_user(1)
        assert db.reap() == 0  # first sight of its activity
        with pytest.warns(ResourceWarning, match="idle in transaction past the leak timeout"):
            assert db.reap() == 1
        with pytest.raises(
            NoSessionError, match=r"\(ended\)> has ended: the leak guard ended it .*Database\(leak_timeout="
        ):
            get_user(1)
        held.__exit__(None, None, None)


def test_a_session_the_leak_guard_ended_is_never_joined(users: str) -> None:
    """A session ended by the leak guard stays current in its context, but later sessions there, and units of work,
    are their own and commit."""
    with Database(users, max_size=2, leak_timeout=0.0) as db:
        held = session(db)
        held.__enter__()
        add_user(53, "held")
        assert db.reap() == 0  # first sight of its activity
        with pytest.warns(ResourceWarning, match="idle in transaction past the leak timeout"):
            assert db.reap() == 1
        with db.session():
            add_user(54, "after")
        db.run(add_user, 55, "unit")
        held.__exit__(None, None, None)
        with db.session():
            assert (get_user(53), get_user(54), get_user(55)) == (None, User(54, "after", None), User(55, "unit", None))


@pytest.mark.parametrize("left_in", ["__enter__", "generator"])
def test_a_session_a_pool_task_left_open_is_not_joined_by_the_next_tasks(users: str, left_in: str) -> None:
    """A thread pool's task that leaves its session open (entered and never exited, or in a generator it keeps
    suspended) leaves it current in its thread; the next tasks there run outside its block: their sessions are
    their own and commit, before and after the leak guard ends the one left open."""
    kept: list[Generator[None, None, None]] = []
    with Database(users, max_size=2, leak_timeout=0.0) as db, ThreadPoolExecutor(max_workers=1) as pool:

        def rows() -> Generator[None, None, None]:
            with db.session():
                add_user(50, "left")
                yield

        def leave_open() -> None:
            if left_in == "__enter__":
                session(db).__enter__()  # never exited
                add_user(50, "left")
            else:
                kept.append(rows())
                next(kept[0])

        def write(user_id: int) -> None:
            with db.session():
                add_user(user_id, "own")

        pool.submit(leave_open).result()
        pool.submit(write, 51).result()
        with session(users):  # another connection
            assert (get_user(50), get_user(51)) == (None, User(51, "own", None))
        with pytest.warns(ResourceWarning, match="idle in transaction past the leak timeout"):
            assert db.reap() == 1
        pool.submit(write, 52).result()
        with session(users):
            assert (get_user(50), get_user(52)) == (None, User(52, "own", None))
        for gen in kept:
            pool.submit(gen.close).result()  # in its thread, whose context holds its session
        assert db.counters.as_dict() == {
            "borrowed": 3,
            "released": 3,
            "committed": 2,
            "rolled_back": 1,
            "commit_unknown": 0,
            "leaked": 1,
        }


# -- observability ---------------------------------------------------------------------------------------


def test_calls_and_sessions_are_logged_at_debug(users: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="pgdecor"), session(users):
        get_user(1)
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith("tests.usercode.userdb.get_user: function get_user in ") and m.endswith(" ms") for m in messages
    )
    assert any("borrowed a connection" in m for m in messages)
    assert any("ended (committed) and gave its connection back" in m for m in messages)


# -- faults ----------------------------------------------------------------------------------------------


@query("SELECT pg_backend_pid()")
def backend_pid() -> int: ...


@query("SELECT set_config('statement_timeout', '50ms', true)")
def short_statement_timeout() -> str: ...


@query("SELECT pg_sleep(1)")
def sleep_a_second() -> None: ...


def test_terminated_backend_is_a_clear_error_and_the_next_session_works(
    users: str, admin: psycopg.Connection[Any]
) -> None:
    with Database(users, max_size=1) as db:
        with pytest.raises(psycopg.OperationalError) as info, db.session():
            pid = backend_pid()
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            get_user(1)
        assert any("raised by tests.usercode.userdb.get_user" in n for n in getattr(info.value, "__notes__", []))
        with db.session():
            assert backend_pid() != pid
            assert get_user(1) is not None
        assert db.counters.borrowed == db.counters.released == 2


def test_statement_timeout_rolls_the_session_back(users: str, admin: psycopg.Connection[Any]) -> None:
    name = "timeout_app"
    with Database(make_conninfo(users, application_name=name), max_size=1) as db:
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"), db.session():
            add_user(11, "slow")
            short_statement_timeout()
            sleep_a_second()
        with db.session():
            assert get_user(11) is None
    assert "idle in transaction" not in app_backends(admin, name)


@pytest.mark.slow
def test_pool_recovers_from_a_server_restart(tmp_path: Any) -> None:
    with TemporaryServer() as server, Database(server.dsn, min_size=2, max_size=2) as db:
        with db.session():
            first = backend_pid()
        server.restart()
        with db.session():  # the pool's check replaces the connections the restart closed
            assert backend_pid() != first
        assert db.counters.rolled_back == 0


# -- soaks -----------------------------------------------------------------------------------------------


def _check_after_soak(admin: psycopg.Connection[Any], db: Database, name: str) -> None:
    seen = app_backends(admin, name)
    assert "idle in transaction" not in seen
    assert sum(seen.values()) <= db.max_size
    c = db.counters
    assert c.borrowed == c.released == c.committed + c.rolled_back


@pytest.mark.slow
def test_wsgi_soak(soak_dsn: str, admin: psycopg.Connection[Any]) -> None:
    """2,000 requests over 8 threads: a third fail, some stream, some abandon streams or lose their client."""
    name = "wsgi_soak"
    with Database(make_conninfo(soak_dsn, application_name=name), max_size=4) as db:
        succeeded = soak.wsgi_soak(db, 2000, threads=8)
        _check_after_soak(admin, db, name)
        assert soak.committed_hits(admin) == succeeded
        answered = [p for p in itertools.islice(itertools.cycle(soak.PATHS), 2000) if p not in soak.UNANSWERED]
        assert len(succeeded) == len(answered)
        assert db.counters.rolled_back == 2000 - len(succeeded)


@pytest.mark.slow
def test_asgi_soak(soak_dsn: str, admin: psycopg.Connection[Any]) -> None:
    """2,000 requests on asyncio, 16 at a time: failures, streams, client disconnects, cancelled tasks."""
    name = "asgi_soak"

    async def main() -> dict[str, set[str]]:
        async with Database(make_conninfo(soak_dsn, application_name=name), max_size=4) as db:
            outcomes = await soak.asgi_soak(db, 2000, concurrency=16)
            _check_after_soak(admin, db, name)
            return outcomes

    outcomes = asyncio.run(main())
    hits = soak.committed_hits(admin)
    assert outcomes["ok"] <= hits
    assert not hits & (outcomes["failed"] | outcomes["disconnected"])
    # A task cancelled while its COMMIT is under way lets the COMMIT finish (the response is never sent): it may
    # be committed; one cancelled before is not.
    assert hits <= outcomes["ok"] | outcomes["cancelled"]
    assert outcomes["cancelled"]
    assert outcomes["failed"]


@pytest.mark.slow
def test_wsgi_soak_through_pgbouncer_in_transaction_mode(soak_dsn: str, admin: psycopg.Connection[Any]) -> None:
    name = "bouncer_soak"
    with pgbouncer(soak_dsn) as bouncer, Database(make_conninfo(bouncer, application_name=name), max_size=8) as db:
        succeeded = soak.wsgi_soak(db, 2000, threads=8)
        assert db.pooler is True  # a pooler was detected: psycopg's prepared statements are off
        _check_after_soak(admin, db, name)
        assert soak.committed_hits(admin) == succeeded


def test_pgbouncer_detection_can_be_overridden(soak_dsn: str) -> None:
    with pgbouncer(soak_dsn) as bouncer, Database(bouncer, max_size=1, prepare=False) as db, db.session():
        for i in range(1, 12):  # past psycopg's prepare threshold
            assert soak.soak_user(i).id == i
    with Database(soak_dsn, max_size=1) as direct, direct.session():
        assert soak.soak_user(1).id == 1
        assert direct.pooler is False


def test_schema_dsn_sessions_keep_working_alongside(pg_dsn: str, pg_exec: Exec) -> None:
    """A pool on a DSN with a search_path option (no proxy) keeps prepared statements on."""
    pg_exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")

    @query("SELECT x FROM t")
    def x() -> int: ...

    with Database(schema_dsn(pg_dsn, "public"), max_size=1) as db, db.session():
        assert db.pooler is False
    with Database(pg_dsn, max_size=1) as db, db.session():
        assert [x() for _ in range(8)] == [1] * 8


_ = procedure  # the decorators are used through the imported stubs
