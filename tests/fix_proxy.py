"""Fixtures of the tests that count round trips: a proxy between the client and the server (`bench.proxy`), which
holds each byte back and counts the times the client waited for the server with nothing in flight."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg.conninfo import make_conninfo

from bench.proxy import Proxy


@pytest.fixture
def proxy(pg_dsn: str) -> Iterator[Proxy]:
    """A proxy to the test's server. Answers are held back 5 ms each way: a client that sends one statement after
    another without waiting (in a pipeline) is not taken for one that waited for an answer between them."""
    with Proxy(pg_dsn, delay=0.005) as proxy:
        yield proxy


def through(pg_dsn: str, proxy: Proxy) -> str:
    """*pg_dsn*, reaching its server through *proxy*."""
    return make_conninfo(pg_dsn, host="127.0.0.1", port=proxy.port)


def round_trips(proxy: Proxy) -> int:
    """The round trips *proxy* has counted so far."""
    trips: int = proxy.counts()["round_trips"]
    return trips
