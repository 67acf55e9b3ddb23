"""The benchmark still runs every workload (tiny sizes, one round): it cannot rot between full runs."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from bench.proxy import Proxy

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_benchmark_runs_every_workload_and_reports_every_target(pg_server_dsn: str, tmp_path: Path) -> None:
    """The benchmark runs every workload, and the client CPU it reports per call or row is a real measure: more
    than a tenth of a microsecond, and no more than the wall time per operation, as each contender but pgbench runs
    in the benchmark's one thread."""
    out = tmp_path / "results.json"
    subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--dsn", pg_server_dsn, "--json", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    data = json.loads(out.read_text())
    results = data["results"]
    assert set(results) == {"single", "async", "bulk", "stream", "batch", "json"}
    for workload in results.values():
        assert workload["contenders"]
        for name, contender in workload["contenders"].items():
            assert contender["median"] > 0
            if name != "pgbench":  # a process of its own: its CPU counts its start, its rate does not
                # One round: the median rate is that round's, its inverse the wall time per operation.
                assert 0.1 < contender["cpu_us_per_op"] <= 1e6 / contender["median"], name
    assert "psycopg" in results["single"]["contenders"]
    reported = {t["target"] for t in data["targets"]}
    assert {"1. single call", "2. bulk list[User]", "3. batch vs executemany", "4. async single call"} <= reported
    assert {"2. stream memory", "5. import 500 stubs", "6. jsonb -> dataclass"} <= reported
    assert data["stream_peak_rss_kib"]


def test_failing_sessions_leave_nothing_for_the_cyclic_collector(pg_server_dsn: str) -> None:
    """The soak of failing sessions runs, and every object of theirs is freed without the cyclic collector."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.failing", "--sessions", "500", "--dsn", pg_server_dsn],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.splitlines()[0])
    assert result["sessions"] == 500
    assert result["cyclic_objects"] == 0


def test_copy_benchmark_runs_every_contender_and_reports_every_target(pg_server_dsn: str, tmp_path: Path) -> None:
    """The COPY benchmark still runs (tiny sizes, one round), every contender and target reported."""
    out = tmp_path / "copy.json"
    subprocess.run(
        [sys.executable, "-m", "bench.copy", "--quick", "--dsn", pg_server_dsn, "--json", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    data = json.loads(out.read_text())
    assert set(data["results"]) == {"in", "out"}
    assert {"pgdecor", "pgdecor async", "psycopg write_row"} <= set(data["results"]["in"])
    assert {"pgdecor", "pgdecor async", "psycopg + User(*row)"} <= set(data["results"]["out"])
    assert all(c["median"] > 0 for w in data["results"].values() for c in w.values())
    assert {"pgdecor", "server floor (pre-encoded)"} <= set(data["results"]["in"])
    assert {"COPY in vs write_row", "COPY in vs floor", "COPY out vs psycopg", "COPY out async"} <= {
        t["target"] for t in data["targets"]
    }


def test_latency_benchmark_counts_round_trips_of_every_contender(pg_server_dsn: str, tmp_path: Path) -> None:
    """The latency benchmark still runs (a few requests, one round), and reports each contender's round trips."""
    out = tmp_path / "latency.json"
    subprocess.run(
        [sys.executable, "-m", "bench.latency", "--quick", "--dsn", pg_server_dsn, "--json", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    data = json.loads(out.read_text())
    results = data["results"]
    assert set(results) == {"one", "gather", "dependent", "many"}
    assert {w["minimum_round_trips"] for w in results.values()} == {2, 4}
    expected = {
        "one": {"pgdecor", "pgdecor async", "psycopg", "psycopg async", "psycopg pipeline, by hand"},
        "gather": {"pgdecor async", "psycopg async", "psycopg async pipeline, by hand"},
        "dependent": {"pgdecor", "pgdecor async", "psycopg", "psycopg async", "psycopg pipeline, by hand"},
        "many": {"pgdecor", "pgdecor async", "psycopg executemany", "psycopg async executemany"},
    }
    if importlib.util.find_spec("asyncpg") is not None:
        for key, name in (
            ("one", "asyncpg"),
            ("gather", "asyncpg"),
            ("gather", "asyncpg, 5 pooled connections"),
            ("dependent", "asyncpg"),
            ("many", "asyncpg fetchmany"),
        ):
            expected[key].add(name)
    for key, workload in results.items():
        assert set(workload["contenders"]) == expected[key]
        for contender in workload["contenders"].values():
            assert contender["median_ms"] > 0
            assert type(contender["round_trips"]) is int
            assert contender["round_trips"] > 0
    # By hand, psycopg's pipeline reaches the minimum: the counts are exact where the traffic is known
    assert results["one"]["contenders"]["psycopg pipeline, by hand"]["round_trips"] == 2
    assert results["gather"]["contenders"]["psycopg async pipeline, by hand"]["round_trips"] == 2
    # and so do pgdecor's gathered calls, once their statements are prepared
    assert results["gather"]["contenders"]["pgdecor async"]["round_trips_min"] == 2
    assert data["round_trip_ms"] > 2 * data["delay_ms"]


def test_proxy_counts_one_round_trip_per_execute_and_delays_each_way(pg_server_dsn: str) -> None:
    """Through the latency proxy, each autocommit `SELECT 1` is one round trip, and every byte waits the delay."""
    with Proxy(pg_server_dsn, delay=0.002) as proxy:
        dsn = make_conninfo(
            pg_server_dsn, host="127.0.0.1", hostaddr="", port=str(proxy.port), sslmode="disable", gssencmode="disable"
        )
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
            proxy.stamps.clear()
            for n in range(1, 6):
                before = proxy.counts()["round_trips"]
                assert conn.execute("SELECT 1").fetchone() == (1,)
                assert proxy.counts()["round_trips"] == before + 1, n
            stamps = list(proxy.stamps)
            # pipelined, five statements wait for the server once
            before = proxy.counts()["round_trips"]
            with conn.pipeline():
                for _ in range(5):
                    conn.execute("SELECT 1")
            assert proxy.counts()["round_trips"] == before + 1
    assert {s.direction for s in stamps} == {"client", "server"}
    assert len(stamps) >= 10
    assert all(s.delivered - s.received >= 0.002 for s in stamps)
