# Generated from tests/service/test_units_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.service.test_units_async`, generated from it: see there."""

from __future__ import annotations

import threading
from collections.abc import Iterator
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
def on_call() -> int: ...


@query("UPDATE doctors SET on_call = false WHERE id = %(id)s")
def go_off_call(id: int) -> None: ...


@query("SELECT current_setting('transaction_isolation') || ' ' || current_setting('transaction_read_only')")
def mode_seen() -> str: ...


@query("UPDATE tally SET n = n + 1 WHERE id = %(id)s")
def bump(id: int) -> None: ...


@query("SELECT n FROM tally ORDER BY id")
def tallies() -> list[int]: ...


@query("INSERT INTO items VALUES (%(id)s)")
def add_item(id: int) -> None: ...


@query("SELECT id FROM items ORDER BY id")
def item_ids() -> list[int]: ...


@query("SELECT id FROM items ORDER BY id")
def each_item() -> Iterator[int]: ...


@query("SELECT txid_current()")
def txid() -> int: ...


@query("SELECT pg_terminate_backend(pg_backend_pid())")
def end_my_backend() -> bool: ...


@procedure
def always_conflicts() -> None: ...


@pytest.fixture
def units(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(SCHEMA)
    return pg_dsn


def test_a_session_begins_with_the_isolation_and_read_only_it_asks_for(units: str) -> None:
    """Both are sent in the BEGIN; a write in a read-only session is refused by the server; the pooled connection's
    own defaults are back for the next session."""
    with Database(units, max_size=1) as db:
        with db.session(isolation="serializable", readonly=True):
            assert mode_seen() == "serializable on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), session(db, readonly=True):
            add_item(1)
        with session(db, isolation="repeatable read"):
            assert mode_seen() == "repeatable read off"
        with session(db):
            assert mode_seen() == "read committed off"
            assert item_ids() == []


def test_a_mode_that_cannot_apply_is_refused_with_the_fix(units: str) -> None:
    """An isolation level that is not one, a mode for an autocommit session, an isolation level on a connection
    already in a transaction, autocommit on one that is not in autocommit mode, and an isolation level for a
    session that would join another are refused, naming the fix."""
    with pytest.raises(ArgumentError, match=r"isolation='snapshot' is not an isolation level; use one of"):
        session(units, isolation="snapshot")  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match=r"autocommit=True begins no transaction, so isolation= and readonly="):
        session(units, autocommit=True, readonly=True)
    with psycopg.Connection.connect(units) as conn:
        conn.execute("SELECT 1")  # a transaction of the connection's own is open
        with (
            pytest.raises(ArgumentError, match=r"the connection is in a transaction already"),
            session(conn, isolation="serializable"),
        ):
            mode_seen()
    with (
        psycopg.Connection.connect(units) as conn,
        pytest.raises(ArgumentError, match=r"not in autocommit mode"),
        session(conn, autocommit=True),
    ):
        txid()
    with (
        session(units),
        pytest.raises(ArgumentError, match=r"asks for isolation='serializable', but joins"),
        session(units, isolation="serializable"),
    ):
        pass


def test_a_serialization_failure_runs_the_unit_again_and_its_effect_happens_once(units: str) -> None:
    """Write skew: the unit takes a doctor off call only if two are on call; another serializable transaction does
    the same meanwhile and commits first. The unit's first run fails (40001), nothing of it stays; its second run
    sees one doctor on call and leaves it so."""
    runs: list[int] = []
    other = f"{units} application_name=other"  # another source: a session of its own, not joined

    def take_doctor_one_off_call() -> str:
        runs.append(len(runs) + 1)
        if on_call() < 2:
            return "stays on call"
        if len(runs) == 1:
            with session(other, isolation="serializable"):
                assert on_call() == 2
                go_off_call(2)
        go_off_call(1)
        return "off call"

    with Database(units) as db:
        result = db.run(take_doctor_one_off_call, retry=NOW, isolation="serializable")
        assert db.counters.retried == 1
        with db.session():
            assert on_call() == 1
    assert (result, runs) == ("stays on call", [1, 2])


@pytest.mark.slow
def test_a_deadlock_runs_the_unit_that_lost_again(units: str) -> None:
    """Two units bump two counters in opposite orders, meeting in the middle: the server ends one with a deadlock
    (40P01), which runs again once the other has committed. Each unit's effect happens once: both counters are 2."""
    runs: list[str] = []
    bumped_first: list[str] = []
    met = threading.Event()

    def bump_both(first: int, second: int) -> None:
        runs.append(f"{first}{second}")
        bump(first)
        if runs.count(f"{first}{second}") == 1:
            bumped_first.append(f"{first}{second}")
            if len(bumped_first) == 2:
                met.set()
            assert met.wait(timeout=30)
        bump(second)

    with Database(units, max_size=2) as db:
        with ThreadPoolExecutor(max_workers=2) as pool:  # each unit in a thread of its own
            for unit in [pool.submit(db.run, bump_both, *pair, retry=NOW) for pair in ((1, 2), (2, 1))]:
                unit.result()
        with db.session():
            assert tallies() == [2, 2]
        assert db.counters.retried == 1
    assert sorted(runs) in (["12", "12", "21"], ["12", "21", "21"])


def test_an_error_that_is_not_a_conflict_is_not_run_again(units: str) -> None:
    """A unique violation is the unit's own error: raised at once, its run noted, never run again."""
    runs: list[int] = []

    def add_twice() -> None:
        runs.append(1)
        add_item(1)
        add_item(1)

    with Database(units) as db:
        with pytest.raises(psycopg.errors.UniqueViolation) as info:
            db.run(add_twice, retry=NOW)
        assert db.counters.retried == 0
    assert runs == [1]
    assert any("run 1 of at most 4 of" in n and "SQLSTATE 23505" in n for n in getattr(info.value, "__notes__", []))


def test_the_retry_budget_is_kept_and_the_last_error_notes_every_run(units: str) -> None:
    """A unit that conflicts every time runs as many times as its `Retry` allows, commits nothing, and its last
    error notes every run."""
    runs: list[int] = []

    def conflicts() -> None:
        runs.append(1)
        add_item(len(runs))
        always_conflicts()

    with Database(units) as db:
        with pytest.raises(psycopg.errors.SerializationFailure) as info:
            db.run(conflicts, retry=Retry(retries=2, backoff=0))
        assert db.counters.retried == 2
        with db.session():
            assert item_ids() == []  # no run committed anything
    assert len(runs) == 3
    notes = [n for n in getattr(info.value, "__notes__", []) if n.startswith("pgdecor: run ")]
    assert [n.split(" of at most")[0] for n in notes] == ["pgdecor: run 1", "pgdecor: run 2", "pgdecor: run 3"]
    assert all(f"{__name__}.test_the_retry_budget_is_kept_and_the_last_error_notes_every_run" in n for n in notes)


def test_a_connection_lost_before_the_commit_runs_again_only_when_asked(units: str) -> None:
    """The server ends the unit's connection in the middle of its first run (nothing committed): with
    ``connection_lost=True`` the unit runs again on a new connection and its write happens once; without, the
    error is raised."""
    runs: list[int] = []

    def write_then_lose_the_connection(item: int) -> None:
        runs.append(1)
        add_item(item)
        if len(runs) == 1:
            end_my_backend()

    with Database(units) as db:
        db.run(write_then_lose_the_connection, 5, retry=Retry(connection_lost=True, backoff=0))
        with db.session():
            assert item_ids() == [5]
        runs.clear()
        with pytest.raises(psycopg.OperationalError):
            db.run(write_then_lose_the_connection, 6, retry=NOW)
        assert runs == [1]
        with db.session():
            assert item_ids() == [5]


def test_the_decorator_runs_units_on_the_source_they_are_given(units: str) -> None:
    """`retried` makes a function whose first argument is its source a unit of work: run there, in the isolation
    level it names, and again on a serialization failure; the function keeps its name."""
    runs: list[str] = []

    @retried(retry=NOW, isolation="serializable")
    def add(db: Database, item: int) -> str:
        runs.append("serializable")
        add_item(item)
        if runs.count("serializable") == 1:
            always_conflicts()
        return mode_seen()

    @retried(retry=NOW, isolation="repeatable read")
    def add_repeatably(db: Database, item: int) -> str:
        runs.append("repeatable read")
        add_item(item)
        if runs.count("repeatable read") == 1:
            always_conflicts()
        return mode_seen()

    with Database(units) as db:
        assert add(db, 1) == "serializable off"
        assert add_repeatably(db, 2) == "repeatable read off"
    assert runs == ["serializable", "serializable", "repeatable read", "repeatable read"]
    with session(units):
        assert item_ids() == [1, 2]
    assert add.__name__ == "add"


def test_a_unit_inside_a_session_on_its_source_is_refused(units: str) -> None:
    """It would join that session, and a run again could not start a transaction of its own."""
    with Database(units) as db, db.session(), pytest.raises(ArgumentError, match=r"which its session would join"):
        db.run(item_ids)


def test_an_autocommit_session_makes_each_call_a_transaction_of_its_own(units: str) -> None:
    """Each call commits alone (a distributed database can then delegate it); a failing call raises and undoes only
    itself, and the session ends without `RolledBackError`; `transaction()` still opens a transaction; the pooled
    connection's next session begins a transaction again."""
    with Database(units, max_size=1) as db:
        with db.session(autocommit=True):
            first, second = txid(), txid()
            add_item(1)
            with pytest.raises(psycopg.errors.UniqueViolation):
                add_item(1)
            add_item(2)
            with pytest.raises(psycopg.errors.UniqueViolation), transaction():
                add_item(3)
                add_item(1)
            with pytest.raises(Error, match=r"a stream reads through a server-side cursor, which needs a transaction"):
                list(each_item())
            with transaction():
                assert list(each_item()) == [1, 2]
        assert first != second
        with db.session():
            a, b = txid(), txid()
            assert item_ids() == [1, 2]
            assert mode_seen() == "read committed off"
        assert a == b
        assert db.counters.as_dict() == {
            "borrowed": 2,
            "released": 2,
            "committed": 2,
            "rolled_back": 0,
            "commit_unknown": 0,
            "leaked": 0,
        }


def test_a_retry_policy_that_cannot_work_is_refused_with_the_fix(units: str) -> None:
    """Before anything connects or runs."""
    runs: list[int] = []

    def unit(n: int) -> None:
        runs.append(n)

    with pytest.raises(ArgumentError, match=r"Retry\(retries=-1\): give how many times to run again, 0 or more"):
        Retry(retries=-1)
    with pytest.raises(ArgumentError, match=r"Retry\(retries=True\)"):
        Retry(retries=True)
    with pytest.raises(ArgumentError, match=r"Retry\(backoff=-1, max_backoff=2.0\): give seconds, 0 or more"):
        Retry(backoff=-1)
    with Database(units) as db:
        with pytest.raises(ArgumentError, match=r"Database.run\(\): retry='3' is neither a Retry nor a number"):
            db.run(unit, 1, retry="3")  # type: ignore[arg-type]
        with pytest.raises(ArgumentError, match=r"Database.run\(\): isolation='snapshot' is not an isolation level"):
            db.run(unit, 1, isolation="snapshot")  # type: ignore[arg-type]
        assert db.counters.borrowed == 0
    assert runs == []
