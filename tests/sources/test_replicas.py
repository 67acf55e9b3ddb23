# Generated from tests/sources/test_replicas_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.sources.test_replicas_async`, generated from it: see there."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import psycopg
import pytest

from pgdecor import ArgumentError, Database, session
from pgdecor.testing import TemporaryServer
from tests.fix_replicas import position, replayed
from tests.usercode.replica_notes import add_note, note, on_standby

# Each test runs against a streaming standby, started for the module.
pytestmark = pytest.mark.slow


def test_a_session_given_a_fresh_token_never_reads_stale_data(
    servers: tuple[str, str], paused: psycopg.Connection[Any]
) -> None:
    """Replay paused: a session with the writer's token reads from the primary, seeing the write, once the standby
    has not replayed it (an async session after waiting its ``replica_wait``; a sync one after looking once:
    waiting would hold its thread); without the token, a session reads the standby as it is. Once replay resumes,
    a session with the token reads the write from the standby."""
    primary, standby = servers
    with Database(primary, replica=standby, replica_wait=0.1) as db:
        with db.session() as writer:
            add_note(1, "hello")
        token = writer.commit_token
        assert token is not None
        with db.session():
            assert (on_standby(), note(1)) == (True, None)  # stale, as a replica may be: no token given
        with db.session(after=token):
            assert (on_standby(), note(1)) == (False, "hello")
        waited = 0  # a sync session looks once
        assert (db.counters.replica_waits, db.counters.replica_fallbacks) == (waited, 1)
        paused.execute("SELECT pg_wal_replay_resume()")
        replayed(standby, position(primary))
        with db.session(after=token):
            assert (on_standby(), note(1)) == (True, "hello")
        assert db.counters.replica_fallbacks == 1


def test_a_token_is_handed_out_only_where_there_is_a_replica_and_checked_when_given(
    servers: tuple[str, str],
) -> None:
    """A session on a database without a replica has no token to give; a token that is not one (a tampered
    cookie) is an `ArgumentError` before anything connects."""
    primary, standby = servers
    with Database(primary) as db:
        with db.session() as s:
            add_note(3, "no replica")
        assert s.commit_token is None
        for bad in ("nonsense", "0/3000148", "FFFFFFFF/FFFFFFFF", "0/3000148; DROP TABLE notes", "A" * 44, 12):
            with pytest.raises(ArgumentError, match=r"is not a token a session handed out"):
                db.session(after=bad)  # type: ignore[arg-type]
    with session(primary, replica=standby) as reader:
        assert note(3) in (None, "no replica")  # from the standby, however far it is
    assert reader.commit_token is None  # it wrote nothing on the primary: it never used it


def test_several_hosts_with_load_balancing_spread_sessions_where_libpq_can(servers: tuple[str, str]) -> None:
    """``load_balance_hosts=random`` (libpq 16 and later) spreads the sessions' new connections over the hosts of
    one connection string; where the libpq is older, the string is refused at once, naming the option, rather
    than at the first call."""
    hosts = [str(psycopg.conninfo.conninfo_to_dict(dsn)["host"]) for dsn in servers]
    # Written out: psycopg's make_conninfo would itself refuse the option with an older libpq.
    spread = f"host={','.join(hosts)} port=5432,5432 user=postgres dbname=postgres load_balance_hosts=random"
    if psycopg.pq.version() < 160000:
        with pytest.raises(ArgumentError, match=r"load_balance_hosts"):
            Database(spread)
        return
    seen = set()
    for _ in range(40):  # each session on a conninfo string opens a connection of its own
        with session(spread):
            seen.add(on_standby())
    assert seen == {True, False}


def test_a_serializable_session_reads_from_the_primary(servers: tuple[str, str]) -> None:
    """A standby refuses SERIALIZABLE transactions: such a session's readonly stubs run on the primary; at
    REPEATABLE READ they run on the standby."""
    primary, standby = servers
    with Database(primary, replica=standby) as db:
        with db.session(isolation="serializable"):
            assert on_standby() is False
        with db.session(isolation="repeatable read"):
            assert on_standby() is True


def test_a_token_says_nothing_of_the_write_volume(servers: tuple[str, str]) -> None:
    """A token is sealed: 43 URL-safe characters in which the position does not show, different for two sessions
    that committed at the same position."""
    primary, standby = servers
    with Database(primary, replica=standby) as db:
        tokens: set[str] = set()
        for _ in range(2):
            with db.session() as s:
                with db.session():  # nothing written: the position stays
                    pass
                on_standby()
                add_note(900 + len(tokens), "sealed")
            assert s.commit_token is not None
            tokens.add(s.commit_token)
    assert len(tokens) == 2
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) and "/" not in t for t in tokens)


def test_a_forged_or_foreign_token_is_ignored_without_a_wait(
    servers: tuple[str, str], paused: psycopg.Connection[Any]
) -> None:
    """Replay paused: tokens of the right shape that the service did not seal (made up, sealed with another
    secret, or sealed for another cluster with the same secret) are ignored and counted: the session reads the
    standby as if it had none, waiting for nothing."""
    primary, standby = servers
    secret = "a secret of the service, 32 chars"
    with TemporaryServer() as other, Database(other.dsn, replica=other.dsn, secret=secret) as elsewhere:
        with elsewhere.session() as s:
            assert on_standby() is False  # its "replica" is a primary: it has its own writes
            with psycopg.connect(other.dsn, autocommit=True) as conn:
                conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
            add_note(1, "elsewhere")
        foreign = s.commit_token
    with Database(primary, replica=standby, secret="another secret of 32 characters!") as stranger:
        with stranger.session() as s:
            add_note(30, "other key")
        other_key = s.commit_token
    # With a 30 s wait for the replica, had a session waited, the test would time out.
    with Database(primary, replica=standby, secret=secret, replica_wait=30) as db:
        for token in ("A" * 43, foreign, other_key):
            assert token is not None
            with db.session(after=token):
                assert (on_standby(), note(30)) == (True, None)
        assert (db.counters.tokens_rejected, db.counters.replica_waits, db.counters.replica_fallbacks) == (3, 0, 0)


def test_the_tokens_of_one_secret_are_honoured_by_every_database_given_it(
    servers: tuple[str, str], paused: psycopg.Connection[Any]
) -> None:
    """Two processes of a service (two `Database` objects here) given the same secret accept each other's tokens;
    without a secret each has a key of its own, and the other's token is ignored (counted)."""
    primary, standby = servers
    secret = b"0123456789abcdef0123456789abcdef"
    with (
        Database(primary, replica=standby, secret=secret) as one,
        Database(primary, replica=standby) as keyless,
    ):
        with one.session() as s:
            add_note(40, "shared")
        with Database(primary, replica=standby, secret=secret) as two, two.session(after=s.commit_token):
            assert (on_standby(), note(40)) == (False, "shared")
        with keyless.session(after=s.commit_token):
            assert (on_standby(), note(40)) == (True, None)
        assert keyless.counters.tokens_rejected == 1
    with pytest.raises(ArgumentError, match=r"secret=.*16 characters or more"):
        Database(primary, secret="short")


def test_an_unreachable_replica_sends_readonly_work_to_the_primary(caplog: pytest.LogCaptureFixture) -> None:
    """A standby that stops: readonly calls run on the primary within ``replica_timeout``, counted, the outage
    logged once; once the standby is back, they run there again (it is tried every ``health.retry`` seconds)."""
    with (
        TemporaryServer() as own_primary,
        own_primary.standby() as standby,
        Database(own_primary.dsn, replica=standby.dsn, replica_timeout=0.5, timeout=30) as db,
    ):
        assert db.replica is not None
        db.replica.health.retry = 0.2
        with db.session():
            assert on_standby() is True
        standby.crash()
        caplog.set_level(logging.INFO, logger="pgdecor")
        for _ in range(5):
            with db.session():
                assert on_standby() is False
        assert db.counters.replica_unreachable == 5
        down = [r.getMessage() for r in caplog.records if "cannot be reached" in r.getMessage()]
        assert len(down) == 1
        assert standby.dsn not in down[0]
        standby.restart()
        deadline = time.monotonic() + 30
        while True:
            with db.session():
                if on_standby():
                    break
            assert time.monotonic() < deadline, "readonly calls never went back to the standby"
        assert [r.getMessage() for r in caplog.records if "reached again" in r.getMessage()] != []
