"""Fixtures of the tests of replicas: a primary and its streaming standby, started for a test module, with a notes
table replayed on both; the standby's replay paused for a test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgdecor.testing import TemporaryServer


def replayed(standby: str, lsn: str) -> None:
    """Wait until *standby* has replayed past *lsn* (setting up: what the tests assert is pgdecor's waiting)."""
    with psycopg.connect(standby, autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]).fetchone() != (True,):
            assert time.monotonic() < deadline, "the standby does not replay"
            time.sleep(0.01)


def position(primary: str) -> str:
    """The primary's write-ahead log position now."""
    with psycopg.connect(primary, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    """A primary and its streaming standby, with the notes table replayed on both."""
    with TemporaryServer() as primary, primary.standby() as standby:
        with psycopg.connect(primary.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        replayed(standby.dsn, row[0])
        yield primary.dsn, standby.dsn


@pytest.fixture
def paused(servers: tuple[str, str]) -> Iterator[psycopg.Connection[Any]]:
    """The standby with its replay paused (resumed after the test)."""
    with psycopg.connect(servers[1], autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")
