"""Slow calls: above a threshold (``Database(slow_call=...)``, or a stub's ``slow=``), a call is logged at WARNING
with its stub, its duration, its SQL and its row count, never its arguments, and counted.

These are the async stubs' tests; tests/limits/test_slow.py, the sync stubs' same tests, is generated from them by
tools/async_to_sync.py."""

from __future__ import annotations

import logging

import pytest

from pgdecor import ArgumentError, Database, SignatureError, query, session


@query("SELECT pg_sleep(0.05)::text || %(label)s")
async def napping(label: str) -> str: ...


@query("SELECT %(label)s")
async def quick(label: str) -> str: ...


@query("SELECT g FROM generate_series(1, 3) g, pg_sleep(0.05)", slow=0.01)
async def slow_rows() -> list[int]: ...


@query("SELECT pg_sleep(0.05)::text", slow=30)
async def allowed() -> str: ...


def _slow_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "slow call" in r.getMessage()]


@pytest.mark.timing
async def test_calls_over_the_databases_threshold_are_logged_and_counted(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The slow call is logged once, naming the stub, its duration, the SQL with its placeholders (the argument
    never shows) and its rows; quick calls are not; the stub's own threshold wins over the database's."""
    caplog.set_level(logging.WARNING, logger="pgdecor")
    async with Database(pg_dsn, slow_call=0.02) as db, db.session():
        assert (await napping("secret-label")).endswith("secret-label")
        assert await quick("x") == "x"
        assert await allowed() == ""
    (logged,) = _slow_logs(caplog)
    assert logged.startswith(f"pgdecor: slow call: {__name__}.napping took ")
    assert "(over 20.0 ms), 1 row: SELECT pg_sleep(0.05)::text || %b" in logged
    assert "secret-label" not in logged
    assert db.counters.slow_calls == 1


@pytest.mark.timing
async def test_a_stubs_threshold_applies_on_any_source(pg_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    """A stub's `slow=` holds in a session on a conninfo string, where no Database sets a threshold."""
    caplog.set_level(logging.WARNING, logger="pgdecor")
    async with session(pg_dsn):
        assert await slow_rows() == [1, 2, 3]
    (logged,) = _slow_logs(caplog)
    assert f"{__name__}.slow_rows" in logged
    assert ", 3 rows: SELECT g FROM generate_series" in logged


if True:  # ASYNC
    pass  # checked when the Database is made or the stub decorated, before any call: one kind is enough
else:

    def test_a_threshold_that_is_not_a_number_of_seconds_is_refused(pg_dsn: str) -> None:
        """A Database's `slow_call=` or a stub's `slow=` that is not a number of seconds is refused when made."""
        with pytest.raises(ArgumentError, match=r"Database\(slow_call=\.\.\.\) takes a number of seconds"):
            Database(pg_dsn, slow_call=-1)
        with pytest.raises(SignatureError, match=r"@query\(slow=\.\.\.\) takes a number of seconds"):
            query("SELECT 1", slow="1s")  # type: ignore[arg-type, unused-ignore]
