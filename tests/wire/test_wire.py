# Generated from tests/wire/test_wire_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.wire.test_wire_async`, generated from it: see there."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest
from psycopg import _queries

from pgdecor import MappingError, NotFoundError, counters, query, session
from pgdecor._wire import guard as _wire_guard
from pgdecor._wire import internals as _internals
from pgdecor._wire import wire
from tests.usercode.userdb import User, add_user, count_users, get_user, load_user

#: The hot statement of `get_user`, as the server shows it.
HOT = "%get_user%"


@query("SELECT %(n)s::int AS n")
def echo(n: int) -> int: ...


def test_a_wire_that_cannot_find_psycopgs_statements_turns_itself_off_loudly(
    users: str, fresh_switch: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A psycopg whose placeholder conversion no longer matches the keys of its prepared statements (simulated):
    the self-test sees that the wire does not find the statement psycopg prepared, and every call goes through
    cursors from then on, right, with one WARNING and the counter saying so; never a silent slowdown."""
    real = _queries._query2pg

    def shifted(query: bytes, encoding: str) -> Any:
        converted, *rest = real(query, encoding)
        return (converted + b" ", *rest)

    monkeypatch.setattr(_internals, "query2pg", shifted)
    before = counters.wire_disabled
    with caplog.at_level(logging.WARNING, logger="pgdecor"), psycopg.Connection.connect(users) as conn, session(conn):
        results = [get_user(1) for _ in range(5)]
    assert results == [User(1, "ann", "ann@example.org")] * 5
    assert fresh_switch.on is False
    assert "does not find it" in (fresh_switch.reason or "")
    assert counters.wire_disabled == before + 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "cursors from now on" in r.message]
    assert len(warnings) == 1


def test_a_change_of_psycopgs_prepared_statement_key_is_caught_not_silent(
    users: str, fresh_switch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg keying its prepared statements another way (simulated): the wire would never find them and every
    call would silently go through cursors; the self-test says so instead, once, and counts it."""
    from psycopg import _preparing

    monkeypatch.setattr(_preparing.PrepareManager, "key", staticmethod(lambda q: (q.query, q.types, "v2")))
    before = counters.wire_disabled
    with psycopg.Connection.connect(users) as conn, session(conn):
        assert [get_user(2) for _ in range(3)] == [User(2, "bob", None)] * 3
    assert fresh_switch.on is False
    assert counters.wire_disabled == before + 1


def test_a_wire_whose_results_would_differ_turns_itself_off_and_the_call_is_right(
    users: str, fresh_switch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conversion that maps the self-test's statement onto another prepared statement (a psycopg internal that
    changed meaning, simulated): the results differ from the cursor's, so the wire is off before any call of the
    user's goes through it."""
    real = _queries._query2pg
    other = b"SELECT $1::int8 + 1 AS pgdecor_wire_probe, $2::text AS t"

    def remapped(query: bytes, encoding: str) -> Any:
        converted, *rest = real(query, encoding)
        return (other if b"pgdecor_wire_probe" in converted else converted, *rest)

    monkeypatch.setattr(_internals, "query2pg", remapped)
    with psycopg.Connection.connect(users) as conn, session(conn):
        probe = "SELECT %s::int8 + 1 AS pgdecor_wire_probe, %s::text AS t"
        conn.execute(probe, _wire_guard._PROBE_ARGS, prepare=True)
        assert [echo(n) for n in range(4)] == [0, 1, 2, 3]
    assert fresh_switch.on is False
    assert "differs from the cursor's" in (fresh_switch.reason or "")


def test_a_database_error_in_the_self_test_leaves_the_session_and_the_wire_alone(
    users: str, fresh_switch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The self-test runs in a savepoint: its statement failing on the server (simulated by a name the server does
    not have, as a pooler losing prepared statements would give) neither aborts the session's transaction nor turns
    the wire off for the process; the call goes through a cursor."""
    original_send = wire.Wire._send

    def lost_name(self: Any, sql: str, params: Any, binary: bool, **how: Any) -> bool:
        if "pgdecor_wire_probe" not in sql:
            return original_send(self, sql, params, binary, **how)
        self.name = b"_pg3_lost"
        self._prep = _internals.YES
        self.pgconn.send_query_prepared(b"_pg3_lost", [None, None], [0, 0], 1)
        return True

    monkeypatch.setattr(wire.Wire, "_send", lost_name)
    with psycopg.Connection.connect(users) as conn, session(conn):
        assert [echo(n) for n in range(3)] == [0, 1, 2]
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert fresh_switch.on is True


@pytest.mark.parametrize("moved", [True, False], ids=["moved by the wire", "told to psycopg"])
def test_a_hot_statement_stays_prepared_while_others_come_and_go(
    users: str, fresh_switch: Any, monkeypatch: pytest.MonkeyPatch, moved: bool
) -> None:
    """The wire keeps psycopg's LRU order as a cursor would: a stub called every round is never evicted by the
    statements prepared after it (with room for three), so it is prepared once in 20 rounds; whether the wire moves
    the statement itself (where psycopg's manager was found to do just that) or tells psycopg's manager."""
    monkeypatch.setattr(_internals, "LRU_IS_A_MOVE", moved)
    names: set[str] = set()
    with psycopg.Connection.connect(users) as conn, session(conn):
        conn.prepared_max = 3
        get_user(1)
        for i in range(20):
            assert get_user(1) == User(1, "ann", "ann@example.org")
            for j in range(2):
                conn.execute(f"SELECT {i * 2 + j} AS cold", prepare=True)
            found = conn.execute("SELECT name FROM pg_prepared_statements WHERE statement LIKE %s", [HOT])
            names.update(name for (name,) in found.fetchall())
    assert fresh_switch.on is True
    assert len(names) == 1


def test_a_command_that_invalidates_prepared_statements_is_seen_by_psycopgs_own_rule(
    pg_dsn: str, pg_exec: Any, fresh_switch: Any
) -> None:
    """A stub running DDL through the wire: psycopg's own rule (called, not copied) decides what its prepared
    statements become, so every later call works, on any psycopg version."""
    pg_exec("CREATE TABLE t (a int)")

    @query("ALTER TABLE t ALTER COLUMN a SET DEFAULT 1")
    def set_default() -> None: ...

    @query("SELECT count(*) FROM t")
    def count_t() -> int: ...

    with psycopg.Connection.connect(pg_dsn) as conn, session(conn):
        for _ in range(8):
            set_default()
            assert count_t() == 0
    assert fresh_switch.on is True


def test_a_repeated_batch_is_pipelined_by_the_wire_with_the_same_results(users: str, wire_batches: list[int]) -> None:
    """The first batch goes through psycopg's executemany (which prepares the statement); the next ones through
    the wire, one round trip each, with exactly the results of the first: rows, no row, and values whose types
    psycopg sends differently (small and large integers, each its own prepared statement)."""
    argsets = [(1,), (2,), (99,), (40_000,), (3,)]
    expected = [User(1, "ann", "ann@example.org"), User(2, "bob", None), None, None, User(3, "cid", "cid@example.com")]
    with psycopg.Connection.connect(users) as conn, session(conn):
        results = [get_user.many(argsets) for _ in range(4)]
    assert results == [expected] * 4
    assert wire_batches == [5, 5, 5]


def test_a_failing_execution_in_a_wire_batch_raises_and_rolls_back(users: str, wire_batches: list[int]) -> None:
    """The server's error for the first execution that fails, with the note naming the stub; the executions after
    it are skipped, the session rolls back, and the connection serves the next session."""
    with psycopg.Connection.connect(users) as conn:
        with session(conn):
            add_user.many([(20, "a"), (21, "b")])
            add_user.many([(22, "c"), (23, "d")])  # prepared now: through the wire
        with pytest.raises(psycopg.errors.UniqueViolation) as info, session(conn):
            add_user.many([(24, "e"), (1, "dup"), (25, "f")])
        assert any("tests.usercode.userdb.add_user" in note for note in getattr(info.value, "__notes__", []))
        with session(conn):
            assert count_users() == 7
            assert get_user(24) is None
    assert wire_batches == [2, 0]


@query("SELECT %(x)s AS v")
def same(x: int) -> int: ...


def test_a_batch_whose_values_make_several_prepared_statements_reads_each_by_its_own_columns(
    users: str, wire_batches: list[int]
) -> None:
    """Values psycopg sends as different types (int2, int4, int8) make one prepared statement each, whose column
    types differ too: every result is read with its own loaders and layout, never the first one's."""
    argsets = [(1,), (100_000,), (2,), (10_000_000_000,), (-3,)]
    with psycopg.Connection.connect(users) as conn, session(conn):
        results = [same.many(argsets) for _ in range(3)]
    assert results == [[1, 100_000, 2, 10_000_000_000, -3]] * 3
    assert wire_batches == [5, 5]


def test_single_calls_with_values_of_several_types_are_each_read_right(users: str, fresh_switch: Any) -> None:
    """The same for calls one at a time: each prepared statement's results by its own layout."""
    values = [1, 100_000, 10_000_000_000, -3] * 4
    with psycopg.Connection.connect(users) as conn, session(conn):
        assert [same(v) for v in values] == values


def test_a_row_the_stub_does_not_allow_in_a_wire_batch_raises_after_the_batch_is_read(
    users: str, wire_batches: list[int]
) -> None:
    """Values are made from results as they arrive; a result the stub does not allow (no row for `-> User`) raises
    its pgdecor error once the whole pipeline has been read, so the connection goes on serving the session."""
    with psycopg.Connection.connect(users) as conn, session(conn):
        assert [u.id for u in load_user.many([(1,), (2,)])] == [1, 2]
        with pytest.raises(
            NotFoundError, match=r"tests\.usercode\.userdb\.load_user: function get_user returned no row"
        ):
            load_user.many([(1,), (99,), (2,)])
        assert [u.id for u in load_user.many([(3,), (1,)])] == [3, 1]
    assert wire_batches == [3, 2]  # the one that raised was read to its end through the wire


@query(
    "SELECT i AS id, 'user ' || i AS name, CASE WHEN i %% 3 = 0 THEN NULL ELSE i || '@example.org' END AS email"
    " FROM generate_series(1, %(n)s) AS i"
)
def made_users(n: int) -> list[User]: ...


@query(
    "SELECT i AS id, CASE WHEN i <> %(bad)s THEN 'user ' || i END AS name, NULL AS email"
    " FROM generate_series(1, %(n)s) AS i"
)
def named_users(n: int, bad: int) -> list[User]: ...


@query(
    "SELECT i / CASE WHEN i = %(bad)s THEN 0 ELSE 1 END AS id, 'user ' || i AS name, NULL AS email"
    " FROM generate_series(1, %(n)s) AS i"
)
def failing_users(n: int, bad: int) -> list[User]: ...


def _expected(n: int) -> list[User]:
    return [User(i, f"user {i}", None if i % 3 == 0 else f"{i}@example.org") for i in range(1, n + 1)]


def test_a_large_result_is_read_in_chunks_as_it_comes_with_the_same_rows(users: str, chunked_reads: list[int]) -> None:
    """Once a stub's result had `CHUNK` rows or more, its next one is read in chunks as the server sends them
    (where libpq can), made into values while the rest comes: the same values as read whole, across sessions; a
    small result after a large one, and an empty one, are read right too, and the collector is running after."""
    sizes = [2500, 2500, 2500, 3, 0, 1000, 2001]
    with psycopg.Connection.connect(users) as conn:
        for n in sizes:
            with session(conn):
                assert made_users(n) == _expected(n)
    # The first call goes through a cursor, which has psycopg prepare the statement at the second; then chunks of
    # 1000 rows (the first small result is read in chunks too: the one before was large).
    assert chunked_reads == ([3, 1, 3] if wire.CHUNKED_ROWS else [])


@query("SELECT %(n)s::int + 1 AS n")
def echo_next(n: int) -> int: ...


def test_a_batch_right_after_a_result_read_in_chunks_reads_its_own_results(
    users: str, chunked_reads: list[int]
) -> None:
    """libpq keeps a statement's chunked rows mode for the first statement of a pipeline entered next: a batch run
    right after a result read in chunks gets every value right, both through the wire's pipeline and (its statement
    not prepared yet) through psycopg's."""
    argsets = [(i,) for i in range(1200)]
    with psycopg.Connection.connect(users) as conn, session(conn):
        for _ in range(3):
            assert echo.many(argsets) == list(range(1200))
            assert made_users(2000) == _expected(2000)
        assert echo.many(argsets) == list(range(1200))  # through the wire's pipeline
        assert made_users(2000) == _expected(2000)
        assert echo_next.many(argsets) == [i + 1 for i in range(1200)]  # new: through psycopg's pipeline
    assert chunked_reads == ([2, 2] if wire.CHUNKED_ROWS else [])


def test_a_server_error_in_the_middle_of_a_chunked_result_raises_and_rolls_back(
    users: str, chunked_reads: list[int]
) -> None:
    """Rows already made are dropped: the server's error raises (with the note naming the stub), the session's
    writes are rolled back, and the connection serves the next session (where psycopg, by its own rule, prepares
    the statement again: an error result makes it forget it)."""
    with psycopg.Connection.connect(users) as conn:
        for _ in range(3):
            with session(conn):
                assert len(failing_users(2500, 0)) == 2500
        with pytest.raises(psycopg.errors.DivisionByZero) as info, session(conn):
            add_user(60, "written")
            failing_users(5000, 4500)
        assert any(f"{__name__}.failing_users" in note for note in getattr(info.value, "__notes__", []))
        with session(conn):
            assert get_user(60) is None
            assert [len(failing_users(1200, 0)) for _ in range(3)] == [1200] * 3
    assert chunked_reads == ([3, 4, 2, 2] if wire.CHUNKED_ROWS else [])


def test_a_row_the_stub_does_not_allow_in_a_chunk_raises_after_the_result_is_read(
    users: str, chunked_reads: list[int]
) -> None:
    """A NULL for a field that takes none, in a chunk after the first: its MappingError once the whole result is
    in, so that the connection goes on serving the session."""
    with psycopg.Connection.connect(users) as conn, session(conn):
        for _ in range(3):
            assert len(named_users(2000, 0)) == 2000
        with pytest.raises(MappingError, match=r"column 'name' is NULL"):
            named_users(3000, 2500)
        assert len(named_users(1000, 0)) == 1000
        add_user(61, "after")
    assert chunked_reads == ([2, 3, 1] if wire.CHUNKED_ROWS else [])


@query("SELECT pg_notify('pgdecor_wire', %(payload)s)")
def notify(payload: str) -> None: ...


def test_notifications_that_come_with_a_wire_call_reach_the_connections_handlers(
    users: str, wire_calls: list[str]
) -> None:
    """A notification arriving with a call's result (here each call's own, delivered as its statement commits) is
    handed to psycopg's handlers as a cursor's read would hand it, not left behind in libpq."""
    got: list[str] = []
    with psycopg.Connection.connect(users, autocommit=True) as conn:
        conn.execute("LISTEN pgdecor_wire")
        conn.add_notify_handler(lambda n: got.append(n.payload))
        with session(conn, autocommit=True):
            for i in range(4):
                notify(f"n{i}")
    assert got == ["n0", "n1", "n2", "n3"]
    assert len(wire_calls) >= 2


def test_the_wire_moves_statements_itself_only_where_psycopgs_manager_does_just_that(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shortcut is found out, not assumed: a psycopg whose manager does anything more for a statement run
    again (asks for a validation, keeps counts, leaves the order alone) has wires tell its manager every time
    instead."""
    from psycopg import _preparing

    assert _internals.lru_is_a_move() is True  # this psycopg: moved to the recent end, nothing else
    real = _preparing.PrepareManager.maybe_add_to_cache

    def asks_for_validation(self: Any, query: Any, prep: Any, name: bytes) -> Any:
        real(self, query, prep, name)
        return self.key(query)

    def leaves_the_order(self: Any, query: Any, prep: Any, name: bytes) -> Any:
        return None if prep is _preparing.Prepare.YES else real(self, query, prep, name)

    for changed in (asks_for_validation, leaves_the_order):
        monkeypatch.setattr(_preparing.PrepareManager, "maybe_add_to_cache", changed)
        assert _internals.lru_is_a_move() is False
