"""What the stubs' and sessions' options in seconds share: their check, and the switch that tells the calls
whether any exists in the process (so that calls pay one test for an option nobody uses)."""

from __future__ import annotations

import math

__all__ = ["Switch", "seconds_option"]


class Switch:
    """Off until the first option of its kind is given; never turned off again."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = False


def seconds_option(what: str, seconds: object, error: type[Exception], *, zero: bool) -> float | None:
    """*seconds* checked (else *error* naming *what*): None, or a finite number of seconds, greater than 0 (or 0 as
    well, if *zero*)."""
    if seconds is None:
        return None
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not math.isfinite(seconds)
        or seconds < 0
        or (seconds == 0 and not zero)
    ):
        least = "0 or more" if zero else "greater than 0"
        msg = f"{what} takes a number of seconds {least} (e.g. {0.5 if zero else 2.5}), or None; not {seconds!r:.40}"
        raise error(msg)
    return float(seconds)
