"""The README's Flask and FastAPI set-ups under real servers (gunicorn with gthread workers, uvicorn), with faults.

Each soak drives bounded concurrent HTTP load at a money-transfer service while backends are terminated, the
server is restarted once, statements time out, handlers raise after writing (or answer 500, or swallow a
database error), COMMIT itself fails, and clients hang up. Then it checks, as exact numbers: money is conserved;
every 200 answer's transfer is in the ledger; no request that was not answered 200 left a ledger row; no backend
stayed idle in transaction; the pool never grew past its size; the counters balance; the service recovered.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from pgdecor.testing import ServerNotFoundError, TemporaryServer, find_bindir
from tests.usercode.bank import APPLICATION, SCHEMA, TOTAL
from tests.utils import servers

pytestmark = [pytest.mark.slow, pytest.mark.timing]

#: The requests of one round of the soak: mostly plain transfers, and each kind of failure.
FAULTS = ["", "", "", "raise", "", "status", "", "caught", "", "timeout", "", "deferred", "", "hangup", "", ""]
REQUESTS = 960
CLIENTS = 8
POOL = 4


@pytest.fixture(scope="module")
def own_server() -> Iterator[TemporaryServer]:
    """A server of the soaks' own, even with $PGDECOR_TEST_DSN set: they restart it."""
    try:
        find_bindir()
    except ServerNotFoundError as err:
        pytest.skip(f"the soaks restart a server of their own, which needs PostgreSQL's server binaries: {err}")
    with TemporaryServer() as server:
        yield server


@dataclass
class Soak:
    """What one soak saw."""

    ok: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    hung_up: set[str] = field(default_factory=set)
    #: Requests answered 500 saying their COMMIT's outcome is unknown (its answer was lost in a fault).
    unknown: set[str] = field(default_factory=set)
    idle_in_transaction_ms: float = 0.0
    max_backends: int = 0
    terminated: int = 0
    restarted_at: float = 0.0
    recovered_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _admin(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


def _watch(dsn: str, soak: Soak, stop: threading.Event) -> None:
    """Every 100 ms: the app's backends, and how long any has been idle in transaction."""
    conn: psycopg.Connection[Any] | None = None
    while not stop.wait(0.1):
        try:
            conn = conn or _admin(dsn)
            count, idle = conn.execute(
                "SELECT count(*), coalesce(max(extract(epoch FROM now() - state_change) * 1000) "
                "FILTER (WHERE state = 'idle in transaction'), 0) FROM pg_stat_activity WHERE application_name = %s",
                [APPLICATION],
            ).fetchone() or (0, 0)
        except psycopg.OperationalError:  # the server is restarting
            _drop(conn)
            conn = None
            continue
        soak.max_backends = max(soak.max_backends, count)
        soak.idle_in_transaction_ms = max(soak.idle_in_transaction_ms, float(idle))
    _drop(conn)


def _drop(conn: psycopg.Connection[Any] | None) -> None:
    """Close a connection of the helpers' (after an error, too: the next turn opens another)."""
    if conn is not None:
        conn.close()


def _chaos(server: TemporaryServer, soak: Soak, stop: threading.Event, restart: threading.Event) -> None:
    """Terminate a random backend of the app every 150 ms; restart the server once when asked."""
    conn: psycopg.Connection[Any] | None = None
    while not stop.wait(0.15):
        if restart.is_set():
            restart.clear()
            _drop(conn)
            conn = None
            server.restart()
            soak.restarted_at = time.monotonic()
            continue
        try:
            conn = conn or _admin(server.dsn)
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity "
                "WHERE application_name = %s ORDER BY random() LIMIT 1) s",
                [APPLICATION],
            ).fetchone()
            soak.terminated += killed[0] if killed else 0
        except psycopg.OperationalError:
            _drop(conn)
            conn = None
    _drop(conn)


def _one(port: int, n: int, soak: Soak, restart: threading.Event) -> None:
    fault = FAULTS[n % len(FAULTS)]
    rng = random.Random(n)  # noqa: S311 - the soak's load, not a secret
    src, dst = rng.sample(range(1, 21), 2)
    req = f"r{n}"
    path = f"/transfer?req={req}&src={src}&dst={dst}&amount={rng.randint(1, 50)}"
    if n == REQUESTS // 2:
        restart.set()
    if fault == "hangup":
        servers.hang_up(port, path + "&fault=slow", after=0.1)
        with soak.lock:
            soak.hung_up.add(req)
        return
    try:
        status, _, body = servers.exchange(port, "POST", path + (f"&fault={fault}" if fault else ""))
    except OSError:  # the server aborted the response
        status, body = 0, None
    unknown = status == 500 and isinstance(body, str) and "outcome of this request is unknown" in body
    with soak.lock:
        (soak.ok if status == 200 else soak.unknown if unknown else soak.failed).add(req)
        if status == 200 and soak.restarted_at and not soak.recovered_at:
            soak.recovered_at = time.monotonic()


def _settled_counters(port: int) -> dict[str, int]:
    """The service's counters once the handlers of hung-up requests (still running after their client left) end."""
    deadline = time.monotonic() + 10
    while True:
        status, counters = servers.request(port, "GET", "/counters")
        assert status == 200
        if counters["borrowed"] == counters["released"] or time.monotonic() > deadline:
            return dict(counters)
        time.sleep(0.05)


def _run(kind: str, server: TemporaryServer, figures: Callable[[str], None]) -> None:
    with _admin(server.dsn) as conn:
        conn.execute(SCHEMA)
    soak = Soak()
    stop, restart = threading.Event(), threading.Event()
    with servers.serve(kind, server.dsn, pool=POOL) as port:
        helpers = [
            threading.Thread(target=_watch, args=(server.dsn, soak, stop)),
            threading.Thread(target=_chaos, args=(server, soak, stop, restart)),
        ]
        for t in helpers:
            t.start()
        try:
            with ThreadPoolExecutor(CLIENTS) as clients:
                list(clients.map(lambda n: _one(port, n, soak, restart), range(REQUESTS)))
        finally:
            stop.set()
            for t in helpers:
                t.join()
        counters = _settled_counters(port)
    with _admin(server.dsn) as conn:
        (money,) = conn.execute("SELECT sum(balance) FROM accounts").fetchone() or (None,)
        ledger = {r for (r,) in conn.execute("SELECT request FROM ledger").fetchall()}
        (idle_now,) = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
        ).fetchone() or (None,)
    lost = soak.ok - ledger
    kept_failed = ledger & soak.failed
    kept_hung_up = ledger & soak.hung_up
    recovery = soak.recovered_at - soak.restarted_at
    figures(
        f"{kind}: {len(soak.ok)} answered 200, {len(soak.failed)} failed, {len(soak.unknown)} of unknown outcome "
        f"({len(ledger & soak.unknown)} of them committed), {len(soak.hung_up)} hung up "
        f"({len(kept_hung_up)} of them committed), {soak.terminated} backends terminated, 1 restart; "
        f"money {money} of {TOTAL}; acknowledged writes lost {len(lost)}; writes of failed requests kept "
        f"{len(kept_failed)}; longest idle in transaction {soak.idle_in_transaction_ms:.0f} ms; most backends "
        f"{soak.max_backends} (pool {POOL}); recovery after the restart {recovery:.2f} s; counters {counters}"
    )
    assert money == TOTAL
    assert lost == set()
    assert kept_failed == set()
    assert idle_now == 0
    assert soak.idle_in_transaction_ms < 1000
    assert soak.max_backends <= POOL
    assert soak.restarted_at
    assert 0 < recovery < 15
    ended = counters["committed"] + counters["rolled_back"] + counters["commit_unknown"]
    assert counters["borrowed"] == counters["released"] == ended
    assert counters["leaked"] == 0
    assert len(soak.unknown) <= counters["commit_unknown"]  # said unknown only where it was
    # Each committed session is an answered transfer, or (WSGI only, which cannot see a client leave before it
    # writes to it) a hang-up whose handler had finished: a commit is never counted for anything else.
    assert counters["committed"] == len(soak.ok) + len(kept_hung_up)
    if kind == "uvicorn":
        assert kept_hung_up == set()
    assert len(soak.ok) > REQUESTS // 2
    faulty = {f"r{n}" for n in range(REQUESTS) if FAULTS[n % len(FAULTS)]}
    assert not faulty & soak.ok  # no request that met its fault was answered 200


def test_gunicorn_flask_soak(own_server: TemporaryServer, figures: Callable[[str], None]) -> None:
    """Flask under gunicorn (gthread): every transaction outcome is true under faults."""
    _run("gunicorn", own_server, figures)


def test_uvicorn_fastapi_soak(own_server: TemporaryServer, figures: Callable[[str], None]) -> None:
    """FastAPI under uvicorn: every transaction outcome is true under faults, and hang-ups roll back."""
    _run("uvicorn", own_server, figures)
