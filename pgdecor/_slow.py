"""Slow calls: a threshold (``Database(slow_call=...)``, or a stub's ``slow=``) above which a call is logged at
WARNING, with its stub, its duration, its SQL (never its arguments) and its row count, and counted. Calls pay
nothing for it until a threshold exists somewhere in the process: then each call reads the clock twice."""

from __future__ import annotations

import logging
import math
from typing import Any

from ._errors import SignatureError

__all__ = ["arm", "armed", "log_slow", "rows_of", "slow_threshold"]

logger = logging.getLogger("pgdecor")


class _Armed:
    """Whether any threshold exists in the process (the calls' only test while none does)."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = False


armed = _Armed()


def arm() -> None:
    armed.on = True


def slow_threshold(what: str, seconds: object, error: type[Exception] = SignatureError) -> float | None:
    """*seconds* checked (else *error*): None (none), or a number of seconds, 0 or more; arms the calls' clock."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        msg = f"{what} takes a number of seconds (e.g. 0.5), 0 or more, or None; not {seconds!r:.40}"
        raise error(msg)
    arm()
    return float(seconds)


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
