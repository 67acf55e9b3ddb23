"""How an async session given a commit token waits for its replica, on a real streaming standby: without holding
one of its connections, and not at all for a token no replica will reach. A sync session never waits (that would
hold its thread): it looks once, as tests/sources/test_replicas.py shows."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from pgdecor import Database
from tests.usercode.replica_notes import aadd_note, anote, aon_standby

# Each test runs against a streaming standby, started for the module.
pytestmark = pytest.mark.slow


def test_an_async_session_waits_for_its_replica_without_holding_a_connection(
    servers: tuple[str, str], paused: psycopg.Connection[Any]
) -> None:
    """Replay paused: an async session with a fresh token waits for the standby without holding one of its
    connections (the replica pool has one, and another session reads from it meanwhile), and reads the write from
    the standby as soon as replay resumes."""
    primary, standby = servers

    async def scenario() -> list[Any]:
        async with Database(primary, replica=standby, max_size=1, timeout=5, replica_wait=60) as db:
            async with db.session() as writer:
                await aadd_note(50, "awaited")

            async def waiting() -> tuple[Any, ...]:
                async with db.session(after=writer.commit_token):
                    return (await aon_standby(), await anote(50))

            waiter = asyncio.ensure_future(waiting())
            assert db.replica is not None
            for _ in range(2000):  # until the waiter has looked once, and given the replica connection back
                stats = db.replica.apool.get_stats()
                if stats.get("requests_num", 0) >= 1 and stats.get("pool_available", 0) == 1:
                    break
                await asyncio.sleep(0.005)
            else:
                pytest.fail("the waiting session never looked at the standby")
            async with db.session():  # the one replica connection is free while the waiter waits
                meanwhile = (await aon_standby(), await anote(50), waiter.done())
            paused.execute("SELECT pg_wal_replay_resume()")
            return [meanwhile, await waiter, db.counters.replica_waits, db.counters.replica_fallbacks]

    assert asyncio.run(scenario()) == [(True, None, False), (True, "awaited"), 1, 0]


def test_a_token_beyond_the_primarys_log_is_ignored_without_a_wait(
    servers: tuple[str, str], paused: psycopg.Connection[Any]
) -> None:
    """A token sealed with the service's key for its cluster, but beyond the primary's write-ahead log (as after a
    failover that lost writes, or a restored backup: no replica will ever reach it): an async session asks the
    primary once, and reads the standby as if it had no token, at once (30 s of waiting allowed), counted."""
    primary, standby = servers
    with psycopg.connect(primary) as conn:
        row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    assert row is not None

    async def scenario() -> tuple[Any, ...]:
        async with Database(primary, replica=standby, replica_wait=30) as db:
            token = db.tokens.seal("FF/0", int(row[0]))
            async with db.session(after=token):
                on = await aon_standby()
            return on, db.counters.tokens_rejected, db.counters.replica_waits, db.counters.replica_fallbacks

    assert asyncio.run(scenario()) == (True, 1, 0, 0)
