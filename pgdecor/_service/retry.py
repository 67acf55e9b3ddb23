# Generated from pgdecor/_service/retry_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._service.retry_async`, generated from it: see there."""

from __future__ import annotations

import sys
from typing import Any, TypeVar

from pgdecor._acompat import pause
from pgdecor._errors import ArgumentError, add_note
from pgdecor._session.api import Session
from pgdecor._session.current import session_to_join
from pgdecor._session.modes import Mode
from pgdecor._sources.kinds import Given, source_for

from .retry_policy import Retry, Unit, note_failure

__all__ = ["run_unit"]

T = TypeVar("T")


def run_unit(
    what: str,
    given: Given,
    fn: Unit[T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    policy: Retry,
    chosen: Mode,
    opened_at: str,
) -> T:
    """Run ``fn(*args, **kwargs)`` in a session of the source *given* begun as *chosen* says, again from its start
    (in a new session) while its error is one *policy* allows; raise the last error, with a note for each run.
    *what* names the caller, which has checked *policy* and *chosen*."""
    source = source_for(what, given)
    if session_to_join(source, sys._getframe(), is_async=False) is not None:
        msg = (
            f"{what}: called inside a session on {source.describe()}, which its session would join: a "
            f"retried unit must be a transaction of its own; call it outside that session"
        )
        raise ArgumentError(msg)
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
    runs = policy.retries + 1
    notes: list[str] = []
    for run in range(1, runs + 1):
        committing = False
        try:
            with Session(source, None, opened_at, chosen):
                result = fn(*args, **kwargs)
                committing = True  # the block is done: what fails now fails the COMMIT
        except Exception as err:
            again = run < runs and policy.retryable(err, committing=committing)
            if not again:
                for note in notes:  # the runs before, then this one
                    add_note(err, note)
            notes.append(note_failure(err, name, run, runs, again=again))
            if not again:
                raise
            source.counters.add("retried")
        else:
            return result
        pause(policy.delay(run + 1))
    raise AssertionError("unreachable")  # pragma: no cover - the last run returns or raises
