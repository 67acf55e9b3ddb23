# Generated from tests/session/test_session_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.session.test_session_async`, generated from it: see there."""

import contextlib
import ipaddress
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import pq
from psycopg.rows import dict_row
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool

from pgdecor import (
    ArgumentError,
    Database,
    NoSessionError,
    RolledBackError,
    Session,
    TransactionScope,
    query,
    session,
    transaction,
)
from tests.usercode.userdb import User, add_user, count_users, each_user, get_user, set_email, users_by_domain

# How a block of this kind opens, as messages name it.
WITH = "with"


def open_backends(admin: psycopg.Connection[Any], dsn: str) -> list[tuple[str, str]]:
    """(state, query) of the server backends of *dsn*'s application, other than *admin*."""
    app = psycopg.conninfo.conninfo_to_dict(dsn).get("application_name", "")
    rows = admin.execute(
        "SELECT state, query FROM pg_stat_activity"
        " WHERE application_name = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
        [app],
    ).fetchall()
    return [(str(s), str(q)) for s, q in rows]


def test_call_outside_a_session_raises_no_session_error() -> None:
    """A call with no session says how to open one."""
    with pytest.raises(
        NoSessionError, match=r"tests\.usercode\.userdb\.get_user\(\) was called outside any session; call it inside"
    ):
        get_user(1)


def test_session_borrows_lazily() -> None:
    """A session that makes no call never connects (so an unreachable server is never a problem)."""
    with session("host=/nonexistent port=1 connect_timeout=1") as s:
        pass
    assert not s.borrowed


def test_normal_exit_commits(users: str) -> None:
    """Work done in a session is committed when the block ends."""
    with session(users):
        add_user(4, "dee")
    with session(users):
        assert count_users() == 4


def test_exception_rolls_back_and_propagates(users: str) -> None:
    """An exception in the block rolls the work back and still reaches the caller."""
    with pytest.raises(KeyError), session(users):
        add_user(4, "dee")
        raise KeyError
    with session(users):
        assert count_users() == 3


def test_conninfo_session_closes_its_connection(users: str) -> None:
    """A session on a conninfo string closes the connection it opened."""
    with session(users) as s:
        count_users()
        conn = s.connection()
        assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
    assert conn.closed


def test_pool_session_returns_the_connection_clean(users: str) -> None:
    """After an error, the pooled connection goes back idle: no aborted transaction reaches the next user."""
    with ConnectionPool(users, min_size=1, max_size=1, open=False) as pool:
        with pytest.raises(psycopg.errors.UniqueViolation), session(pool) as s:
            add_user(1, "dup")
        conn = pool.getconn()
        try:
            assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        finally:
            pool.putconn(conn)
        with session(pool):
            assert count_users() == 3
        assert not s.borrowed
        assert pool.get_stats()["pool_available"] == 1


def test_no_backend_is_left_idle_in_transaction(users: str, admin: Any) -> None:
    """After sessions end, whatever their outcome, no backend is idle in transaction."""
    with ConnectionPool(users, min_size=1, max_size=1, open=False) as pool:
        with session(pool):
            get_user(1)
            assert [s for s, _ in open_backends(admin, users)] == ["idle in transaction"]
        with pytest.raises(ZeroDivisionError), session(pool):
            get_user(1)
            _ = 1 / 0
        with session(users):
            get_user(1)
        assert [s for s, _ in open_backends(admin, users) if s != "idle"] == []


def test_user_connection_is_used_but_not_closed(users: str) -> None:
    """A psycopg connection given as source is committed but stays open and belongs to the caller."""
    with psycopg.Connection.connect(users) as conn:
        with session(conn):
            add_user(4, "dee")
        assert not conn.closed
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (4,)


def test_user_connection_in_a_transaction_gets_a_savepoint(users: str) -> None:
    """Inside the caller's own transaction, a failing session undoes only its own work."""
    with psycopg.Connection.connect(users) as conn:
        conn.execute("INSERT INTO users VALUES (5, 'eve', NULL)")
        with pytest.raises(KeyError), session(conn):
            add_user(4, "dee")
            raise KeyError
        ids = conn.execute("SELECT array_agg(id ORDER BY id) FROM users").fetchone()
        assert ids == ([1, 2, 3, 5],)
        conn.rollback()


def test_nested_session_on_the_same_source_joins_the_outer_one(users: str) -> None:
    """An inner session on the same source shares the connection and the transaction."""
    with session(users) as outer:
        add_user(4, "dee")
        with session(users) as inner:
            assert count_users() == 4
            assert inner.connection() is outer.connection()
        assert outer.connection().info.transaction_status == pq.TransactionStatus.INTRANS
    with pytest.raises(KeyError), session(users):
        with session(users):
            add_user(5, "eve")
        raise KeyError
    with session(users):
        assert count_users() == 4


def test_nested_session_on_another_source_is_independent(users: str) -> None:
    """An inner session on another source has its own transaction, committed at its own exit."""
    with ConnectionPool(users, min_size=1, max_size=1, open=False) as pool, pytest.raises(KeyError), session(users):
        add_user(4, "dee")
        with session(pool):
            add_user(5, "eve")
            assert count_users() == 4  # the outer insert is not visible: another transaction
        raise KeyError
    with session(users):
        assert get_user(4) is None
        assert get_user(5) == User(5, "eve", None)


def test_a_generator_suspended_in_its_session_is_not_joined_by_the_code_iterating_it(users: str) -> None:
    """The code iterating a generator runs outside the generator's session block: a session it opens is its own
    and commits at its end, while the generator's commits at the end of its block; a session opened inside that
    block, or inside the `with` of a context manager whose generator opened it, joins it."""
    with Database(users, max_size=2) as db:

        def rows() -> Iterator[int]:
            with db.session():
                add_user(60, "generator")
                yield 1
                with db.session():  # inside its block: joins it
                    add_user(61, "nested")
                yield 2

        gen = rows()
        assert next(gen) == 1
        with db.session():
            add_user(62, "caller")
        with session(users):  # another connection
            assert (get_user(60), get_user(62)) == (None, User(62, "caller", None))
        assert list(gen) == [2]
        with session(users):
            assert (get_user(60), get_user(61)) == (User(60, "generator", None), User(61, "nested", None))

        @contextlib.contextmanager
        def unit() -> Iterator[None]:
            with db.session():
                yield

        with pytest.raises(KeyError), unit():
            with db.session():
                add_user(63, "in the unit")
            raise KeyError
        with session(users):
            assert get_user(63) is None  # it joined the unit's session, and was rolled back with it
        assert db.counters.as_dict() == {
            "borrowed": 3,
            "released": 3,
            "committed": 2,
            "rolled_back": 1,
            "commit_unknown": 0,
            "leaked": 0,
        }


def test_a_session_that_ended_early_is_not_joined(users: str) -> None:
    """Once a session has ended (`end`, as the middleware does once a response's body is complete), a session opened
    in what remains of its block is its own, and commits at its end."""
    with Database(users, max_size=1) as db:
        with db.session() as first:
            add_user(64, "first")
            first.end()
            with db.session():
                add_user(65, "after")
            with pytest.raises(NoSessionError, match="has ended"):
                get_user(64)  # a call outside a session of its own
        with db.session():
            assert (get_user(64), get_user(65)) == (User(64, "first", None), User(65, "after", None))


def test_transaction_is_a_savepoint_rolled_back_alone(users: str) -> None:
    """A failing `transaction()` block undoes only its own work."""
    with session(users):
        add_user(4, "dee")
        with pytest.raises(psycopg.errors.UniqueViolation), transaction():
            add_user(5, "eve")
            add_user(1, "dup")
        with transaction():
            set_email(4, "dee@example.org")
    with session(users):
        assert get_user(4) == User(4, "dee", "dee@example.org")
        assert get_user(5) is None


def test_transaction_outside_a_session_raises(users: str) -> None:
    """`transaction()` needs a session."""
    with pytest.raises(NoSessionError, match=r"transaction\(\) was called outside any session"), transaction():
        pass


def test_caught_database_error_makes_the_exit_roll_back_loudly(users: str) -> None:
    """If code swallows a database error, the session does not pretend to commit."""
    with (
        pytest.raises(RolledBackError, match=rf"wrap the call that may fail in `{WITH} transaction\(\):`"),
        session(users),
    ):
        add_user(4, "dee")
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            add_user(1, "dup")
    with session(users):
        assert get_user(4) is None


def test_a_session_cannot_be_entered_twice(users: str) -> None:
    """A Session is a one-shot scope."""
    s = session(users)
    with s:
        pass
    with pytest.raises(NoSessionError, match="already entered"), s:
        pass


def test_session_repr_says_its_state(users: str) -> None:
    """The repr names the source kind, where it was opened and its state, never the password-bearing conninfo."""
    s = session(users)
    line = sys._getframe().f_lineno - 1
    assert repr(s) == f"<pgdecor session on a conninfo string opened at {__file__}:{line} (not entered)>"
    with s:
        assert "(active)" in repr(s)
    assert "(ended)" in repr(s)
    assert isinstance(s, Session)


def test_a_connection_with_its_own_row_factory_serves_every_call(users: str) -> None:
    """A connection made with ``row_factory=dict_row`` (for the user's own queries) serves stubs unchanged."""
    with psycopg.Connection.connect(users, row_factory=dict_row) as conn:
        with session(conn):
            for _ in range(3):  # first calls, then prepared ones
                assert get_user(2) == User(2, "bob", None)
                assert users_by_domain("example.org") == [User(1, "ann", "ann@example.org")]
            assert [u.id for u in each_user()] == [1, 2, 3]
            assert get_user.many([(1,), (3,)]) == [get_user(1), get_user(3)]
            assert [get_user(i) for i in (1, 1, 1, 99)][-2:] == [User(1, "ann", "ann@example.org"), None]
        assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}


@dataclass
class Profile:
    id: int
    doc: dict[str, Any]
    address: ipaddress.IPv4Address


@query("SELECT %(id)s::int AS id, '{\"a\": 1}'::jsonb AS doc, '10.0.0.1'::inet AS address")
def profile(id: int) -> Profile: ...


@query("SELECT i AS id, '{\"a\": 1}'::jsonb AS doc, '10.0.0.1'::inet AS address FROM generate_series(1, 3) i")
def each_profile() -> Iterator[Profile]: ...


def _as_django_connects(conn: psycopg.Connection[Any]) -> None:
    """Load jsonb and inet as plain text on *conn*'s own cursors, as Django's connections do."""
    conn.adapters.register_loader("jsonb", TextLoader)
    conn.adapters.register_loader("inet", TextLoader)


def test_a_connection_with_client_side_cursors_and_text_loaders_serves_every_call(users: str) -> None:
    """A connection whose cursors bind on the client (which fetch text only) and load jsonb and inet as text, as
    Django's do, serves stubs the values they are annotated with, call after call; its own cursors keep its
    loaders."""
    expected = Profile(1, {"a": 1}, ipaddress.IPv4Address("10.0.0.1"))
    with psycopg.Connection.connect(users, cursor_factory=psycopg.ClientCursor) as conn:
        _as_django_connects(conn)
        with session(conn), transaction():
            for _ in range(3):  # first calls, then the ones that would fetch binary
                assert profile(1) == expected
                assert get_user(2) == User(2, "bob", None)
            assert profile.many([(1,), (1,)]) == [expected, expected]
            assert [p.doc for p in each_profile()] == [{"a": 1}] * 3
        assert conn.execute("SELECT '{}'::jsonb, '10.0.0.1'::inet").fetchone() == ("{}", "10.0.0.1")


def test_a_server_that_is_not_there_is_named_with_what_to_check() -> None:
    """psycopg's error stays (its class and message), with a note naming the server tried and the session's source."""
    with pytest.raises(psycopg.OperationalError) as info, session("host=/nonexistent port=1 connect_timeout=1"):
        count_users()
    (note,) = [n for n in getattr(info.value, "__notes__", []) if n.startswith("pgdecor:")]
    assert "a session on a conninfo string could not get a connection to /nonexistent:1/" in note
    assert "check that the server runs there" in note


def test_a_session_used_before_it_is_entered_says_so(users: str) -> None:
    """Borrowing outside the ``with`` block would leave a connection nobody ends: refused, and nothing borrowed."""
    s = session(users)
    with pytest.raises(NoSessionError, match=r"is not entered; use it as `with session\(...\):` \(or `async with`\)"):
        s.connection()
    assert not s.borrowed


def test_each_misuse_of_a_session_raises_the_error_of_its_state(users: str) -> None:
    """Through its life (made, entered, ended), each misuse of a session raises `NoSessionError` saying what state
    it is in and what to do, and ending one that has ended already does nothing."""
    s = session(users)
    with pytest.raises(NoSessionError, match=r"\(not entered\)> is not entered; use it as `with session"):
        s.end()
    with pytest.raises(NoSessionError, match="is not entered"):
        s.connection()
    with s:
        with pytest.raises(NoSessionError, match=r"\(active\)> was already entered; call session\(...\) again"), s:
            pass
        get_user(1)
    with pytest.raises(NoSessionError, match=r"\(ended\)> has ended; its connection was given back"):
        s.connection()
    s.end()  # ended already: nothing more to do
    assert not s.borrowed


def test_a_dsn_libpq_cannot_read_is_refused_when_the_session_or_database_is_made() -> None:
    """Not at the first call: at once, showing its keywords (its values masked: any may be a password) and what a
    DSN looks like."""
    with pytest.raises(ArgumentError, match=r"session\(\): 'host=\*\*\* dbname \*\*\*' is not .* after \"dbname\""):
        session("host=localhost dbname app")
    with pytest.raises(ArgumentError, match=r"Database\(\): '\*\*\*' is not a connection string .* write 'postgres"):
        Database("nonsense")
    with pytest.raises(ArgumentError, match=r"Database\(\) takes a connection string, not NoneType None"):
        Database(None)  # type: ignore[arg-type, unused-ignore]


def _documented_names(section: str) -> set[str]:
    """The names the first column of the table under *section* of the Sessions guide gives, calls' parentheses
    left out."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "guide" / "sessions.md").read_text()
    text = guide.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
    return {name.removesuffix("()") for row in rows for name in re.findall(r"`([^`]+)`", row)}


def test_session_and_transaction_scope_show_only_their_documented_names() -> None:
    """`Session` shows the names the guide documents, and nothing of its internals; `TransactionScope` none."""
    shown = {name for name in dir(Session) if not name.startswith("_")}
    assert shown == _documented_names("The session object")
    assert {name for name in dir(TransactionScope) if not name.startswith("_")} == set()
