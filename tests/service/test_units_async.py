"""Units of work: sessions begun with an isolation level or read-only, run again on serialization failures and
deadlocks (and, when asked, lost connections) with their effect happening once, and autocommit sessions.

These are the async units' tests (`Database.arun`, ``async with``); tests/service/test_units.py, the sync units'
same tests, is generated from them by tools/async_to_sync.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from pgdecor import ArgumentError, Database, Error, Retry, procedure, query, retried, session, transaction
from tests.fix_db import Exec

SCHEMA = """
CREATE TABLE doctors (id int PRIMARY KEY, on_call bool NOT NULL);
INSERT INTO doctors VALUES (1, true), (2, true);
CREATE TABLE tally (id int PRIMARY KEY, n int NOT NULL);
INSERT INTO tally VALUES (1, 0), (2, 0);
CREATE TABLE items (id int PRIMARY KEY);
CREATE FUNCTION always_conflicts() RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'could not serialize (simulated)' USING ERRCODE = '40001'; END $$;
"""

NOW = Retry(backoff=0)  # no wait between runs: the tests are about which runs happen


@query("SELECT count(*) FROM doctors WHERE on_call")
async def on_call() -> int: ...


@query("UPDATE doctors SET on_call = false WHERE id = %(id)s")
async def go_off_call(id: int) -> None: ...


@query("SELECT current_setting('transaction_isolation') || ' ' || current_setting('transaction_read_only')")
async def mode_seen() -> str: ...


@query("UPDATE tally SET n = n + 1 WHERE id = %(id)s")
async def bump(id: int) -> None: ...


@query("SELECT n FROM tally ORDER BY id")
async def tallies() -> list[int]: ...


@query("INSERT INTO items VALUES (%(id)s)")
async def add_item(id: int) -> None: ...


@query("SELECT id FROM items ORDER BY id")
async def item_ids() -> list[int]: ...


@query("SELECT id FROM items ORDER BY id")
def each_item() -> AsyncIterator[int]: ...


@query("SELECT txid_current()")
async def txid() -> int: ...


@query("SELECT pg_terminate_backend(pg_backend_pid())")
async def end_my_backend() -> bool: ...


@procedure
async def always_conflicts() -> None: ...


@pytest.fixture
def units(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(SCHEMA)
    return pg_dsn


async def test_a_session_begins_with_the_isolation_and_read_only_it_asks_for(units: str) -> None:
    """Both are sent in the BEGIN; a write in a read-only session is refused by the server; the pooled connection's
    own defaults are back for the next session."""
    async with Database(units, max_size=1) as db:
        async with db.session(isolation="serializable", readonly=True):
            assert await mode_seen() == "serializable on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            async with session(db, readonly=True):
                await add_item(1)
        async with session(db, isolation="repeatable read"):
            assert await mode_seen() == "repeatable read off"
        async with session(db):
            assert await mode_seen() == "read committed off"
            assert await item_ids() == []


async def test_a_mode_that_cannot_apply_is_refused_with_the_fix(units: str) -> None:
    """An isolation level that is not one, a mode for an autocommit session, an isolation level on a connection
    already in a transaction, autocommit on one that is not in autocommit mode, and an isolation level for a
    session that would join another are refused, naming the fix."""
    with pytest.raises(ArgumentError, match=r"isolation='snapshot' is not an isolation level; use one of"):
        session(units, isolation="snapshot")  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match=r"autocommit=True begins no transaction, so isolation= and readonly="):
        session(units, autocommit=True, readonly=True)
    async with await psycopg.AsyncConnection.connect(units) as conn:
        await conn.execute("SELECT 1")  # a transaction of the connection's own is open
        with pytest.raises(ArgumentError, match=r"the connection is in a transaction already"):
            async with session(conn, isolation="serializable"):
                await mode_seen()
    async with await psycopg.AsyncConnection.connect(units) as conn:
        with pytest.raises(ArgumentError, match=r"not in autocommit mode"):
            async with session(conn, autocommit=True):
                await txid()
    async with session(units):
        with pytest.raises(ArgumentError, match=r"asks for isolation='serializable', but joins"):
            async with session(units, isolation="serializable"):
                pass


async def test_a_serialization_failure_runs_the_unit_again_and_its_effect_happens_once(units: str) -> None:
    """Write skew: the unit takes a doctor off call only if two are on call; another serializable transaction does
    the same meanwhile and commits first. The unit's first run fails (40001), nothing of it stays; its second run
    sees one doctor on call and leaves it so."""
    runs: list[int] = []
    other = f"{units} application_name=other"  # another source: a session of its own, not joined

    async def take_doctor_one_off_call() -> str:
        runs.append(len(runs) + 1)
        if await on_call() < 2:
            return "stays on call"
        if len(runs) == 1:
            async with session(other, isolation="serializable"):
                assert await on_call() == 2
                await go_off_call(2)
        await go_off_call(1)
        return "off call"

    async with Database(units) as db:
        result = await db.arun(take_doctor_one_off_call, retry=NOW, isolation="serializable")
        assert db.counters.retried == 1
        async with db.session():
            assert await on_call() == 1
    assert (result, runs) == ("stays on call", [1, 2])


@pytest.mark.slow
async def test_a_deadlock_runs_the_unit_that_lost_again(units: str) -> None:
    """Two units bump two counters in opposite orders, meeting in the middle: the server ends one with a deadlock
    (40P01), which runs again once the other has committed. Each unit's effect happens once: both counters are 2."""
    runs: list[str] = []
    bumped_first: list[str] = []
    if True:  # ASYNC
        met = asyncio.Event()  # both units hold their first row
    else:
        met = threading.Event()

    async def bump_both(first: int, second: int) -> None:
        runs.append(f"{first}{second}")
        await bump(first)
        if runs.count(f"{first}{second}") == 1:
            bumped_first.append(f"{first}{second}")
            if len(bumped_first) == 2:
                met.set()
            if True:  # ASYNC
                await asyncio.wait_for(met.wait(), 30)
            else:
                assert met.wait(timeout=30)
        await bump(second)

    async with Database(units, max_size=2) as db:
        if True:  # ASYNC
            await asyncio.gather(db.arun(bump_both, 1, 2, retry=NOW), db.arun(bump_both, 2, 1, retry=NOW))
        else:
            with ThreadPoolExecutor(max_workers=2) as pool:  # each unit in a thread of its own
                for unit in [pool.submit(db.run, bump_both, *pair, retry=NOW) for pair in ((1, 2), (2, 1))]:
                    unit.result()
        async with db.session():
            assert await tallies() == [2, 2]
        assert db.counters.retried == 1
    assert sorted(runs) in (["12", "12", "21"], ["12", "21", "21"])


async def test_an_error_that_is_not_a_conflict_is_not_run_again(units: str) -> None:
    """A unique violation is the unit's own error: raised at once, its run noted, never run again."""
    runs: list[int] = []

    async def add_twice() -> None:
        runs.append(1)
        await add_item(1)
        await add_item(1)

    async with Database(units) as db:
        with pytest.raises(psycopg.errors.UniqueViolation) as info:
            await db.arun(add_twice, retry=NOW)
        assert db.counters.retried == 0
    assert runs == [1]
    assert any("run 1 of at most 4 of" in n and "SQLSTATE 23505" in n for n in getattr(info.value, "__notes__", []))


async def test_the_retry_budget_is_kept_and_the_last_error_notes_every_run(units: str) -> None:
    """A unit that conflicts every time runs as many times as its `Retry` allows, commits nothing, and its last
    error notes every run."""
    runs: list[int] = []

    async def conflicts() -> None:
        runs.append(1)
        await add_item(len(runs))
        await always_conflicts()

    async with Database(units) as db:
        with pytest.raises(psycopg.errors.SerializationFailure) as info:
            await db.arun(conflicts, retry=Retry(retries=2, backoff=0))
        assert db.counters.retried == 2
        async with db.session():
            assert await item_ids() == []  # no run committed anything
    assert len(runs) == 3
    notes = [n for n in getattr(info.value, "__notes__", []) if n.startswith("pgdecor: run ")]
    assert [n.split(" of at most")[0] for n in notes] == ["pgdecor: run 1", "pgdecor: run 2", "pgdecor: run 3"]
    assert all(f"{__name__}.test_the_retry_budget_is_kept_and_the_last_error_notes_every_run" in n for n in notes)


async def test_a_connection_lost_before_the_commit_runs_again_only_when_asked(units: str) -> None:
    """The server ends the unit's connection in the middle of its first run (nothing committed): with
    ``connection_lost=True`` the unit runs again on a new connection and its write happens once; without, the
    error is raised."""
    runs: list[int] = []

    async def write_then_lose_the_connection(item: int) -> None:
        runs.append(1)
        await add_item(item)
        if len(runs) == 1:
            await end_my_backend()

    async with Database(units) as db:
        await db.arun(write_then_lose_the_connection, 5, retry=Retry(connection_lost=True, backoff=0))
        async with db.session():
            assert await item_ids() == [5]
        runs.clear()
        with pytest.raises(psycopg.OperationalError):
            await db.arun(write_then_lose_the_connection, 6, retry=NOW)
        assert runs == [1]
        async with db.session():
            assert await item_ids() == [5]


async def test_the_decorator_runs_units_on_the_source_they_are_given(units: str) -> None:
    """`retried` makes a function whose first argument is its source a unit of work: run there, in the isolation
    level it names, and again on a serialization failure; the function keeps its name."""
    runs: list[str] = []

    @retried(retry=NOW, isolation="serializable")
    async def add(db: Database, item: int) -> str:
        runs.append("serializable")
        await add_item(item)
        if runs.count("serializable") == 1:
            await always_conflicts()
        return await mode_seen()

    @retried(retry=NOW, isolation="repeatable read")
    async def add_repeatably(db: Database, item: int) -> str:
        runs.append("repeatable read")
        await add_item(item)
        if runs.count("repeatable read") == 1:
            await always_conflicts()
        return await mode_seen()

    async with Database(units) as db:
        assert await add(db, 1) == "serializable off"
        assert await add_repeatably(db, 2) == "repeatable read off"
    assert runs == ["serializable", "serializable", "repeatable read", "repeatable read"]
    async with session(units):
        assert await item_ids() == [1, 2]
    assert add.__name__ == "add"


async def test_a_unit_inside_a_session_on_its_source_is_refused(units: str) -> None:
    """It would join that session, and a run again could not start a transaction of its own."""
    async with Database(units) as db, db.session():
        with pytest.raises(ArgumentError, match=r"which its session would join"):
            await db.arun(item_ids)


async def test_an_autocommit_session_makes_each_call_a_transaction_of_its_own(units: str) -> None:
    """Each call commits alone (a distributed database can then delegate it); a failing call raises and undoes only
    itself, and the session ends without `RolledBackError`; `transaction()` still opens a transaction; the pooled
    connection's next session begins a transaction again."""
    async with Database(units, max_size=1) as db:
        async with db.session(autocommit=True):
            first, second = await txid(), await txid()
            await add_item(1)
            with pytest.raises(psycopg.errors.UniqueViolation):
                await add_item(1)
            await add_item(2)
            with pytest.raises(psycopg.errors.UniqueViolation):
                async with transaction():
                    await add_item(3)
                    await add_item(1)
            with pytest.raises(Error, match=r"a stream reads through a server-side cursor, which needs a transaction"):
                [i async for i in each_item()]
            async with transaction():
                assert [i async for i in each_item()] == [1, 2]
        assert first != second
        async with db.session():
            a, b = await txid(), await txid()
            assert await item_ids() == [1, 2]
            assert await mode_seen() == "read committed off"
        assert a == b
        assert db.counters.as_dict() == {
            "borrowed": 2,
            "released": 2,
            "committed": 2,
            "rolled_back": 0,
            "commit_unknown": 0,
            "leaked": 0,
        }


async def test_a_retry_policy_that_cannot_work_is_refused_with_the_fix(units: str) -> None:
    """Before anything connects or runs."""
    runs: list[int] = []

    async def unit(n: int) -> None:
        runs.append(n)

    with pytest.raises(ArgumentError, match=r"Retry\(retries=-1\): give how many times to run again, 0 or more"):
        Retry(retries=-1)
    with pytest.raises(ArgumentError, match=r"Retry\(retries=True\)"):
        Retry(retries=True)
    with pytest.raises(ArgumentError, match=r"Retry\(backoff=-1, max_backoff=2.0\): give seconds, 0 or more"):
        Retry(backoff=-1)
    async with Database(units) as db:
        with pytest.raises(ArgumentError, match=r"Database.arun\(\): retry='3' is neither a Retry nor a number"):
            await db.arun(unit, 1, retry="3")  # type: ignore[arg-type]
        with pytest.raises(ArgumentError, match=r"Database.arun\(\): isolation='snapshot' is not an isolation level"):
            await db.arun(unit, 1, isolation="snapshot")  # type: ignore[arg-type]
        assert db.counters.borrowed == 0
    assert runs == []
