"""A `Database`: its pool and counters, readonly routing, the leak guard, logging, faults and PgBouncer.

These are the async sessions' tests (``async with``); tests/service/test_database.py, the sync sessions' same tests,
is generated from them by tools/async_to_sync.py. What only threads or tasks do is in tests/service/test_threads.py
and tests/service/test_tasks.py; the soaks under WSGI and ASGI apps, in tests/guarantees/test_soaks.py."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgdecor import Database, NoSessionError, counters, query, session
from pgdecor.testing import TemporaryServer, schema_dsn
from tests.fix_db import Exec
from tests.usercode import soak
from tests.usercode.userdb import User, aadd_user, aget_user
from tests.utils.pgbouncer import pgbouncer

# How a block of this kind opens, as messages name it.
if True:  # ASYNC
    WITH = "async with"
else:
    WITH = "with"


@query("SELECT current_setting('application_name')", readonly=True)
async def which_server() -> str: ...


@query("SELECT current_setting('idle_in_transaction_session_timeout')")
async def idle_timeout() -> str: ...


@query("SELECT pg_backend_pid()")
async def backend_pid() -> int: ...


@query("SELECT set_config('statement_timeout', '50ms', true)")
async def short_statement_timeout() -> str: ...


@query("SELECT pg_sleep(1)")
async def sleep_a_second() -> None: ...


# -- Database --------------------------------------------------------------------------------------------


async def test_database_owns_a_pool_and_counts_what_sessions_did(users: str) -> None:
    """A Database's sessions borrow from its pool (its connections configured: an idle-in-transaction timeout),
    and its counters say what each did; a session that made no call borrowed nothing."""
    async with Database(users, max_size=2) as db:
        async with db.session():
            assert await aget_user(1) == User(1, "ann", "ann@example.org")
            assert await idle_timeout() == "1min"
        with pytest.raises(ZeroDivisionError):
            async with session(db):
                await aadd_user(7, "x")
                _ = 1 / 0
        async with db.session():
            assert await aget_user(7) is None
        async with db.session():
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


async def test_a_database_gives_its_connections_the_idle_in_transaction_timeout_it_is_given(users: str) -> None:
    """``idle_in_transaction_timeout=`` is what its sessions' connections are configured with."""
    async with Database(users, max_size=2, idle_in_transaction_timeout=5) as db:
        async with db.session():
            assert await aget_user(1) == User(1, "ann", "ann@example.org")
            assert await idle_timeout() == "5s"
        assert db.counters.released == 1


async def test_closed_database_is_a_clear_error(users: str) -> None:
    """A session of a Database that was never opened says how to open it."""
    db = Database(users)
    with pytest.raises(NoSessionError, match=rf"is not open .* open it with `{WITH} Database\(...\)` first"):
        async with db.session():
            await aget_user(1)


# -- readonly routing ------------------------------------------------------------------------------------


async def test_readonly_stubs_run_on_the_replica_until_the_session_writes(users: str) -> None:
    """Readonly stubs read from the replica until the session writes; from then on, where it wrote."""
    primary = make_conninfo(users, application_name="primary")
    replica = make_conninfo(users, application_name="replica")
    async with session(primary, replica=replica):
        assert await which_server() == "replica"
        await aadd_user(8, "eve")  # a write: from now on the session reads where it wrote
        assert await which_server() == "primary"
    async with Database(primary, replica=replica, max_size=1) as db, db.session():
        assert await which_server() == "replica"
        assert await aget_user(1) is not None  # not readonly: the primary
        assert await which_server() == "primary"


# -- the leak guard --------------------------------------------------------------------------------------


async def test_abandoned_generator_session_is_rolled_back_with_a_warning(users: str) -> None:
    """A generator dropped while suspended in its session's block has the session rolled back, with a
    `ResourceWarning` saying where it was opened; its connection goes back to the pool."""
    async with Database(users, min_size=1, max_size=1) as db:

        async def rows() -> AsyncIterator[int]:
            async with db.session():
                await aadd_user(9, "gen")
                yield 1
                yield 2

        gen = rows()
        assert await anext(gen) == 1
        warned = rf"opened at {re.escape(__file__)}:\d+ was not ended by its block"
        if True:  # ASYNC
            running = asyncio.all_tasks()
            del gen  # its event loop closes it, in a task of its own (another context than its session's) ...
            await asyncio.sleep(0)  # ... started at the loop's next turn
            (closing,) = asyncio.all_tasks() - running
            with pytest.warns(ResourceWarning, match=warned):
                await closing
        else:
            with pytest.warns(ResourceWarning, match=warned):
                del gen  # refcounting closes it: no garbage collector involved
        assert db.counters.leaked == 1
        assert db.counters.rolled_back == 1
        assert db.apool.get_stats()["pool_available"] == 1
        async with db.session():
            assert await aget_user(9) is None


async def test_session_idle_in_transaction_past_the_leak_timeout_is_reaped(users: str) -> None:
    """A session kept open past the leak timeout is ended by the leak guard (with a warning), its connection
    back in the pool; its calls then say it has ended, and its block leaves the context as it was."""
    async with Database(users, max_size=1, leak_timeout=0.0) as db:
        held = session(db)  # a session kept alive by something that never ends it
        await held.__aenter__()
        await aget_user(1)
        assert await db.areap() == 0  # first sight of its activity
        with pytest.warns(ResourceWarning, match="idle in transaction past the leak timeout"):
            assert await db.areap() == 1
        with pytest.raises(NoSessionError, match="has ended"):
            await aget_user(1)
        await held.__aexit__(None, None, None)
        assert db.apool.get_stats()["pool_available"] == 1
        with pytest.raises(NoSessionError, match="outside any session"):  # its block left the context as it was
            await aget_user(1)


async def test_a_session_whose_batches_read_single_rows_is_not_taken_for_idle_by_the_leak_guard(users: str) -> None:
    """A batch is activity the leak guard sees, one whose results are single rows read through the fast path too: a
    session that runs one between two of its looks is not ended, whatever the leak timeout."""
    async with Database(users, max_size=1, leak_timeout=0.0) as db, db.session():
        for _ in range(2):  # run once on the connection through a cursor, then through the wire
            assert await aget_user.many([(1,), (2,)]) == [User(1, "ann", "ann@example.org"), User(2, "bob", None)]
        assert await db.areap() == 0  # first sight of its activity
        assert await aget_user.many([(2,), (1,)]) == [User(2, "bob", None), User(1, "ann", "ann@example.org")]
        assert await db.areap() == 0
        assert await aget_user(1) == User(1, "ann", "ann@example.org")


async def test_a_session_the_leak_guard_ended_says_so_when_it_is_used(users: str) -> None:
    """A call in a session the leak guard ended (idle in transaction past the leak timeout) raises `NoSessionError`
    naming the leak guard, why it ends sessions, and the setting that gives them longer."""
    async with Database(users, max_size=1, leak_timeout=0.0) as db:
        held = session(db)
        await held.__aenter__()
        await aget_user(1)
        assert await db.areap() == 0  # first sight of its activity
        with pytest.warns(ResourceWarning, match="idle in transaction past the leak timeout"):
            assert await db.areap() == 1
        with pytest.raises(
            NoSessionError, match=r"\(ended\)> has ended: the leak guard ended it .*Database\(leak_timeout="
        ):
            await aget_user(1)
        await held.__aexit__(None, None, None)


async def test_a_session_the_leak_guard_ended_is_never_joined(users: str) -> None:
    """A session ended by the leak guard stays current in its context, but later sessions there, and units of work,
    are their own and commit."""
    async with Database(users, max_size=2, leak_timeout=0.0) as db:
        held = session(db)
        await held.__aenter__()
        await aadd_user(53, "held")
        assert await db.areap() == 0  # first sight of its activity
        with pytest.warns(ResourceWarning, match="idle in transaction past the leak timeout"):
            assert await db.areap() == 1
        async with db.session():
            await aadd_user(54, "after")
        await db.arun(aadd_user, 55, "unit")
        await held.__aexit__(None, None, None)
        async with db.session():
            assert (await aget_user(53), await aget_user(54), await aget_user(55)) == (
                None,
                User(54, "after", None),
                User(55, "unit", None),
            )


# -- observability ---------------------------------------------------------------------------------------


async def test_calls_and_sessions_are_logged_at_debug(users: str, caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG, each call is logged with its stub, its SQL object and its duration, and each session's borrow and
    end."""
    with caplog.at_level(logging.DEBUG, logger="pgdecor"):
        async with session(users):
            await aget_user(1)
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith("tests.usercode.userdb.aget_user: function get_user in ") and m.endswith(" ms") for m in messages
    )
    assert any("borrowed a connection" in m for m in messages)
    assert any("ended (committed) and gave its connection back" in m for m in messages)


# -- faults ----------------------------------------------------------------------------------------------


async def test_terminated_backend_is_a_clear_error_and_the_next_session_works(
    users: str, admin: psycopg.Connection[Any]
) -> None:
    """A call on a terminated backend raises psycopg's error with a note naming the stub; the pool replaces the
    connection for the next session."""
    async with Database(users, max_size=1) as db:
        with pytest.raises(psycopg.OperationalError) as info:
            async with db.session():
                pid = await backend_pid()
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
                await aget_user(1)
        assert any("raised by tests.usercode.userdb.aget_user" in n for n in getattr(info.value, "__notes__", []))
        async with db.session():
            assert await backend_pid() != pid
            assert await aget_user(1) is not None
        assert db.counters.borrowed == db.counters.released == 2


async def test_statement_timeout_rolls_the_session_back(users: str, admin: psycopg.Connection[Any]) -> None:
    """A statement the server cancels at its statement timeout rolls the session back, and leaves no backend idle in
    transaction."""
    name = "timeout_app"
    async with Database(make_conninfo(users, application_name=name), max_size=1) as db:
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            async with db.session():
                await aadd_user(11, "slow")
                await short_statement_timeout()
                await sleep_a_second()
        async with db.session():
            assert await aget_user(11) is None
    assert "idle in transaction" not in soak.backends(admin, name)


@pytest.mark.slow
async def test_pool_recovers_from_a_server_restart() -> None:
    """After the server restarts, the pool's check replaces the connections the restart closed."""
    with TemporaryServer() as server:
        async with Database(server.dsn, min_size=2, max_size=2) as db:
            async with db.session():
                first = await backend_pid()
            server.restart()
            async with db.session():  # the pool's check replaces the connections the restart closed
                assert await backend_pid() != first
            assert db.counters.rolled_back == 0


# -- poolers ---------------------------------------------------------------------------------------------


async def test_pgbouncer_detection_can_be_overridden(soak_dsn: str) -> None:
    """``prepare=False`` keeps prepared statements off behind PgBouncer past psycopg's prepare threshold; a direct
    connection is not taken for a pooler."""
    with pgbouncer(soak_dsn) as bouncer:
        async with Database(bouncer, max_size=1, prepare=False) as db, db.session():
            for i in range(1, 12):  # past psycopg's prepare threshold
                assert (await soak.asoak_user(i)).id == i
    async with Database(soak_dsn, max_size=1) as direct, direct.session():
        assert (await soak.asoak_user(1)).id == 1
        assert direct.pooler is False


async def test_schema_dsn_sessions_keep_working_alongside(pg_dsn: str, pg_exec: Exec) -> None:
    """A pool on a DSN with a search_path option (no proxy) keeps prepared statements on."""
    pg_exec("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")

    @query("SELECT x FROM t")
    async def x() -> int: ...

    async with Database(schema_dsn(pg_dsn, "public"), max_size=1) as db, db.session():
        assert db.pooler is False
    async with Database(pg_dsn, max_size=1) as db, db.session():
        assert [await x() for _ in range(8)] == [1] * 8
