"""Failing calls leave no reference cycles: with the cyclic collector off, everything a failed session used is
freed by reference counting at once, so nothing waits for the garbage collector.

Each case runs in a fresh interpreter (`python -m bench.failing`), so that nothing another test left behind is
counted."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.failing import KINDS

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = 60


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", KINDS)
def test_failing_sessions_leave_no_cycles(
    pg_server_dsn: str, kind: str, mode: str, figures: Callable[[str], None]
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.failing", "--dsn", pg_server_dsn, "--sessions", str(SESSIONS), "--kind", kind,
         "--mode", mode],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.splitlines()[0])
    figures(f"{result['cyclic_objects']} cyclic pgdecor/psycopg objects after {SESSIONS} failing sessions")
    assert result["sessions"] == SESSIONS
    assert result["cyclic_objects"] == 0
