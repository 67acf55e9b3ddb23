"""Slow calls: a threshold (``Database(slow_call=...)``, or a stub's ``slow=``) above which a call is logged at
WARNING, with its stub, its duration, its SQL (never its arguments) and its row count, and counted. Calls pay
nothing for it until a threshold exists somewhere in the process: then each call reads the clock twice."""

from __future__ import annotations

import logging
from typing import Any

from pgdecor._errors import SignatureError

from .options import Switch, seconds_option

__all__ = ["armed", "log_slow", "rows_of", "slow_threshold"]

logger = logging.getLogger("pgdecor")


#: Whether any threshold exists in the process (the calls' only test while none does).
armed = Switch()


def slow_threshold(what: str, seconds: object, error: type[Exception] = SignatureError) -> float | None:
    """*seconds* checked (else *error*): None (none), or a number of seconds, 0 or more; arms the calls' clock."""
    threshold = seconds_option(what, seconds, error, zero=True)
    if threshold is not None:
        armed.on = True
    return threshold


def log_slow(stub: str, took: float, threshold: float, result: Any, sql: str) -> None:
    rows = rows_of(result)
    logger.warning(
        "pgdecor: slow call: %s took %.1f ms (over %.1f ms), %d row%s: %s",
        stub,
        took * 1e3,
        threshold * 1e3,
        rows,
        "" if rows == 1 else "s",
        sql,
    )


def rows_of(result: Any) -> int:
    """How many rows a call's result came from, for the log: a list's length, else 1 (0 for None)."""
    if result is None:
        return 0
    return len(result) if isinstance(result, list) else 1
