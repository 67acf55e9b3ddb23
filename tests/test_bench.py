"""The benchmark still runs every workload (tiny sizes, one round): it cannot rot between full runs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert {"COPY in vs write_row", "COPY out vs psycopg", "COPY out async"} <= {t["target"] for t in data["targets"]}
