"""Slow async calls: above a stub's own threshold (``slow=``), an async call is logged at WARNING with its stub,
its duration, its SQL and its row count, on any source. The test of tests/limits/test_slow.py that had no async
twin, written as tools/async_to_sync.py reads an async source (its sync twin is test_slow.py's)."""

from __future__ import annotations

import logging

import pytest

from pgdecor import query, session
from tests.limits.test_slow import _slow_logs


@query("SELECT g FROM generate_series(1, 3) g, pg_sleep(0.05)", slow=0.01)
async def slow_rows() -> list[int]: ...


@pytest.mark.timing
async def test_a_stubs_threshold_applies_on_any_source(pg_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    """A stub's `slow=` holds in a session on a conninfo string, where no Database sets a threshold."""
    caplog.set_level(logging.WARNING, logger="pgdecor")
    async with session(pg_dsn):
        assert await slow_rows() == [1, 2, 3]
    (logged,) = _slow_logs(caplog)
    assert f"{__name__}.slow_rows" in logged
    assert ", 3 rows: SELECT g FROM generate_series" in logged
