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


def seconds_option(
    what: str, seconds: object, error: type[Exception], *, zero: bool, none: bool = True
) -> float | None:
    """*seconds* checked (else *error* naming *what*): a finite number of seconds, greater than 0 (or 0 as well, if
    *zero*), or None (if *none*)."""
    if seconds is None and none:
        return None
    if (
        seconds is None
        or isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not math.isfinite(seconds)
        or seconds < 0
        or (seconds == 0 and not zero)
    ):
        takes = "0 or more (e.g. 0.5)" if zero else "greater than 0 (e.g. 2.5)"
        msg = f"{what} takes a number of seconds {takes}{', or None' if none else ''}; not {seconds!r:.40}"
        raise error(msg)
    return float(seconds)
