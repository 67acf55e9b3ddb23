"""The suite's plugins: a real PostgreSQL (throwaway, or $PGDECOR_TEST_DSN) and a fresh schema per test come from
pgdecor.testing; the fixtures of this suite are in the tests/fix_*.py files listed here."""

from __future__ import annotations

import gc

import pytest

# pgdecor.testing's fixtures come through its entry point (tests/test_testing.py runs a suite that relies on it).
pytest_plugins = [
    "pytester",
    "tests.fix_db",
    "tests.fix_figures",
    "tests.fix_telemetry",
    "tests.fix_async",
    "tests.fix_replicas",
    "tests.fix_wire",
    "tests.fix_proxy",
]


def pytest_configure(config: pytest.Config) -> None:
    # Sessions must give connections back by themselves; with the collector off, anything that relied on it
    # would leak, and psycopg's ResourceWarning (an error under filterwarnings) would say so.
    gc.disable()
