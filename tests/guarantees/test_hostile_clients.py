"""What hostile HTTP clients can do with the commit cookie, under real servers: a notes service (tests/usercode/notes.py) with
a streaming standby whose replay is paused, served by gunicorn (Flask) and uvicorn (FastAPI), while 40 attackers
send forged tokens, a real token replayed, oversized and repeated ``Cookie`` headers. A victim's latency, with
and without them, is printed under "measured"; the test bounds it only by a generous multiple."""

from __future__ import annotations

import secrets
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from pgdecor.testing import TemporaryServer
from tests.usercode.notes import COOKIE, SCHEMA
from tests.utils import servers

pytestmark = [pytest.mark.slow, pytest.mark.timing]

ATTACKERS = 40
#: Requests each attacker sends, at most, and for how long at most (seconds).
ATTACKS, ATTACK_TIME = 12, 20.0
VICTIM_REQUESTS = 40


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[str, str]]:
    """A primary and its streaming standby holding the notes table, replay paused on the standby."""
    with TemporaryServer() as primary, primary.standby() as standby:
        with psycopg.connect(primary.dsn, autocommit=True) as conn:
            conn.execute(SCHEMA)
            conn.execute("INSERT INTO notes VALUES (1, 'note')")
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        with psycopg.connect(standby.dsn, autocommit=True) as conn:
            deadline = time.monotonic() + 30
            while conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [row[0]]).fetchone() != (True,):
                assert time.monotonic() < deadline, "the standby does not replay"
                time.sleep(0.01)
            conn.execute("SELECT pg_wal_replay_pause()")
        yield primary.dsn, standby.dsn


def _attacks(token: str) -> list[list[tuple[str, str]]]:
    """The Cookie headers of each kind of attack."""
    filler = "; ".join(f"c{i}={'x' * 60}" for i in range(1500))  # ~100 KB in one header
    chunk = "; ".join(f"d{i}={'y' * 60}" for i in range(120))  # ~8 KB, sent in 10 headers
    escapes = "\\" * 2000
    return [
        [("Cookie", f"{COOKIE}=FFFFFFFF/FFFFFFFF")],  # a position far ahead, as tokens were
        [("Cookie", f"{COOKIE}={secrets.token_urlsafe(32)}")],  # a token's shape, sealed by nobody
        [("Cookie", f"{COOKIE}={token}")],  # a real token, replayed while the standby is behind it
        [("Cookie", f"{filler}; {COOKIE}={token}")],
        [("Cookie", f"{chunk}; {COOKIE}=FFFFFFFF/FFFFFFFF") for _ in range(10)],
        [("Cookie", f'{COOKIE}="{escapes}"; {"=" * 2000}')],  # quotes and escapes: a parser's worst case
    ]


def _victim(port: int) -> list[float]:
    """The victim's latencies (seconds): a readonly read and a request that never touches the database."""
    taken = []
    for n in range(VICTIM_REQUESTS):
        path = "/notes/1" if n % 2 else "/ping"
        start = time.perf_counter()
        status, _, _ = servers.exchange(port, "GET", path, timeout=60)
        taken.append(time.perf_counter() - start)
        assert status == 200
    return taken


def _attacker(port: int, headers: list[tuple[str, str]], stop: float, statuses: list[int]) -> None:
    for _ in range(ATTACKS):
        if time.monotonic() > stop:
            return
        try:
            status, _, _ = servers.exchange(port, "GET", "/notes/1", headers, timeout=30)
        except OSError:  # a server may close the connection on a header it will not read
            status = 0
        statuses.append(status)


def _run(kind: str, dsns: tuple[str, str], figures: Callable[[str], None]) -> None:
    primary, standby = dsns
    env = {"NOTES_DSN": primary, "NOTES_REPLICA": standby, "NOTES_SECRET": secrets.token_urlsafe(32)}
    with servers.serve(kind, primary, app="tests.usercode.notes", env=env) as port:
        status, headers, _ = servers.exchange(port, "POST", f"/notes/{2 if kind == 'gunicorn' else 3}")
        assert status == 200
        cookie = next(v for k, v in headers if k.lower() == "set-cookie")
        token = cookie.split(";")[0].split("=", 1)[1]
        calm = _victim(port)
        statuses: list[int] = []
        kinds = _attacks(token)
        stop = time.monotonic() + ATTACK_TIME
        threads = [
            threading.Thread(target=_attacker, args=(port, kinds[n % len(kinds)], stop, statuses))
            for n in range(ATTACKERS)
        ]
        for t in threads:
            t.start()
        try:
            with ThreadPoolExecutor(1) as one:
                attacked = one.submit(_victim, port).result()
        finally:
            for t in threads:
                t.join()
        _, counters = servers.request(port, "GET", "/counters")
    calm_ms, attacked_ms = statistics.median(calm) * 1000, statistics.median(attacked) * 1000
    worst_ms = max(attacked) * 1000
    figures(
        f"{kind}: victim's median latency {calm_ms:.1f} ms alone, {attacked_ms:.1f} ms with {ATTACKERS} attackers "
        f"({len(statuses)} hostile requests; worst {worst_ms:.0f} ms); counters {counters}"
    )
    assert counters["tokens_rejected"] > 0
    assert counters["replica_waits"] + counters["replica_fallbacks"] > 0  # the replayed real token was honoured
    # Generous: 2 cores carry the attackers, the servers and PostgreSQL. Before, the victim waited seconds.
    assert attacked_ms < max(20 * calm_ms, 250)
    assert worst_ms < 3000


def test_hostile_cookies_do_not_slow_a_gunicorn_service(
    replicated: tuple[str, str], figures: Callable[[str], None]
) -> None:
    """Flask under gunicorn: forged, replayed, oversized and repeated cookies cost the victim next to nothing (a
    sync session looks at the replica once; no cookie parser sees the whole header)."""
    _run("gunicorn", replicated, figures)


def test_hostile_cookies_do_not_slow_a_uvicorn_service(
    replicated: tuple[str, str], figures: Callable[[str], None]
) -> None:
    """FastAPI under uvicorn: the same attacks do not stall its event loop, and waiting for the replica holds no
    connection."""
    _run("uvicorn", replicated, figures)
