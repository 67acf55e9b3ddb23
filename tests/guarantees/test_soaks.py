"""Soaks of a `Database` under the middleware: 2,000 requests to a WSGI app in threads and to an ASGI app on
asyncio (a third failing, some streaming, some abandoning their stream or losing their client), and the WSGI one
through PgBouncer in transaction mode: a hit is committed exactly when its request succeeded, no backend is left
idle in transaction, and every borrowed connection is given back."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgdecor import Database
from tests.usercode import soak
from tests.utils.pgbouncer import pgbouncer


def _check_after_soak(admin: psycopg.Connection[Any], db: Database, name: str) -> None:
    seen = soak.backends(admin, name)
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
    """The WSGI soak through PgBouncer in transaction mode: the pooler is detected, and every hit is committed
    exactly when its request succeeded."""
    name = "bouncer_soak"
    with pgbouncer(soak_dsn) as bouncer, Database(make_conninfo(bouncer, application_name=name), max_size=8) as db:
        succeeded = soak.wsgi_soak(db, 2000, threads=8)
        assert db.pooler is True  # a pooler was detected: psycopg's prepared statements are off
        _check_after_soak(admin, db, name)
        assert soak.committed_hits(admin) == succeeded
