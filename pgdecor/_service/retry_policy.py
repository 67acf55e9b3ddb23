"""`Retry`: when a unit of work (a function run as one session) is run again from its start, and how long to wait
first. The decisions only; the runs are `_service.retry_async` and its generated `_service.retry`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg

from pgdecor._errors import ArgumentError, add_note

__all__ = ["CONNECTION_LOST", "AsyncUnit", "Retry", "Unit", "retry_policy"]

T = TypeVar("T")

#: A unit of work: a function whose run is a session's work (`retry_async`, and its generated `retry`).
Unit = Callable[..., T]
AsyncUnit = Callable[..., Awaitable[T]]

logger = logging.getLogger("pgdecor")

#: SQLSTATEs of a server that ended the connection: admin shutdown, crash shutdown, cannot connect now.
CONNECTION_LOST = frozenset({"57P01", "57P02", "57P03"})


@dataclass(frozen=True)
class Retry:
    """When a unit of work runs again, from its start, in a fresh session (and so a fresh transaction).

    *retries* is how many times it may run again after its first run. It runs again on a serialization failure
    (SQLSTATE 40001) or a deadlock (40P01), which leave nothing committed; with *connection_lost*, also when the
    connection was lost, or the server ended it (class 08, 57P01-57P03), before its session began to commit: a
    connection lost during the COMMIT leaves its outcome unknown, and is never retried. *sqlstates* replaces the
    retried codes. Before each new run it waits a random time up to *backoff* seconds, doubled at each run, at most
    *max_backoff* ("full jitter"), so that units that conflicted do not meet again.
    """

    retries: int = 3
    backoff: float = 0.05
    max_backoff: float = 2.0
    connection_lost: bool = False
    sqlstates: frozenset[str] = frozenset({"40001", "40P01"})

    def __post_init__(self) -> None:
        if not _is_count(self.retries):
            msg = f"Retry(retries={self.retries!r}): give how many times to run again, 0 or more"
            raise ArgumentError(msg)
        if self.backoff < 0 or self.max_backoff < 0:
            msg = f"Retry(backoff={self.backoff!r}, max_backoff={self.max_backoff!r}): give seconds, 0 or more"
            raise ArgumentError(msg)

    def retryable(self, err: BaseException, *, committing: bool) -> bool:
        """Whether a run that raised *err* may run again (*committing*: it was raised while the session ended)."""
        if not isinstance(err, psycopg.Error):
            return False
        state = err.sqlstate or ""
        if state in self.sqlstates:
            return True
        if not self.connection_lost or committing:
            return False
        lost = isinstance(err, psycopg.OperationalError) and not state  # the connection broke: no SQLSTATE
        return lost or state.startswith("08") or state in CONNECTION_LOST

    def delay(self, run: int) -> float:
        """Seconds to wait before run *run* (2 for the first retry)."""
        return random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (run - 2)))  # noqa: S311 - jitter


def retry_policy(what: str, retry: Retry | int) -> Retry:
    """*retry* as a `Retry` (an int is a number of retries)."""
    if isinstance(retry, Retry):
        return retry
    if _is_count(retry):
        return Retry(retries=retry)
    msg = f"{what}: retry={retry!r} is neither a Retry nor a number of retries"
    raise ArgumentError(msg)


def note_failure(err: BaseException, name: str, run: int, runs: int, *, again: bool) -> str:
    """Note on *err* the run of *name* it ended (the note is returned), and log it when the unit runs again."""
    state = getattr(err, "sqlstate", None)
    what = f"SQLSTATE {state}" if state else type(err).__name__
    first = (str(err).strip().splitlines() or [""])[0][:200]
    note = f"pgdecor: run {run} of at most {runs} of {name} failed: {what}: {first}"
    add_note(err, note)
    if again:
        logger.info("%s: run %d of %d failed (%s); running it again", name, run, runs, what)
    return note


def _is_count(value: object) -> bool:
    """Whether *value* is a whole number, 0 or more (not a bool), whatever the annotations promised."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
