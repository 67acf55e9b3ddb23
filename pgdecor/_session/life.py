"""A session's life: the states it goes through, the moves between them, and the error each misuse raises in each
state. `SessionState` holds its life and changes it through `moved` only.

::

    UNOPENED ──enter──▶ OPEN ──its block ends, or `end()`──▶ ENDED
                          ├───the leak guard ends it───────▶ REAPED
                          └───the process forks (child)────▶ FORKED
"""

from __future__ import annotations

import enum

from pgdecor._errors import NoSessionError

__all__ = ["Life", "moved", "unusable"]


class Life(enum.Enum):
    """Where a session is in its life (see the module docstring)."""

    #: Made, not entered yet.
    UNOPENED = "not entered"
    #: Entered, and not ended: its calls borrow and use its connections.
    OPEN = "active"
    #: Ended by its block, or by `Session.end`: its transactions ended, its connections given back.
    ENDED = "ended"
    #: Ended by the leak guard, its owner gone or idle in transaction too long: rolled back, its connections given
    #: back.
    REAPED = "ended by the leak guard"
    #: Open when the process forked, in the child: its connections are the parent's, never used or ended here.
    FORKED = "ended by a fork"

    @property
    def shown(self) -> str:
        """What a session's repr says of it: whether it is entered, active or ended."""
        return self.value if self in (Life.UNOPENED, Life.OPEN) else "ended"


#: The moves a session's life may make, from each state.
_MOVES: dict[Life, frozenset[Life]] = {
    Life.UNOPENED: frozenset({Life.OPEN}),
    Life.OPEN: frozenset({Life.ENDED, Life.REAPED, Life.FORKED}),
    Life.ENDED: frozenset(),
    Life.REAPED: frozenset(),
    Life.FORKED: frozenset(),
}

#: What entering a session says, in each state it cannot be entered in.
_REENTERED = "{sess!r} was already entered; call session(...) again for a new scope"

#: What using a session (a call, `connection()`, `end()`) says, in each state but OPEN.
_UNUSABLE = {
    Life.UNOPENED: "{sess!r} is not entered; use it as `with session(...):` (or `async with`)",
    Life.ENDED: (
        "{sess!r} has ended; its connection was given back. Make the call inside `with session(...)`, or open a new "
        "session"
    ),
    Life.REAPED: (
        "{sess!r} has ended: the leak guard ended it (its thread or task ended, or it stayed idle in transaction "
        "past the leak timeout), rolled its transaction back and gave its connection back; end sessions in their "
        "block, and give Database(leak_timeout=...) more seconds if a session is idle that long on purpose"
    ),
    Life.FORKED: (
        "{sess!r} was opened before this process was forked, and its connection belongs to the parent process; "
        "open sessions (and Databases) in the child, after the fork"
    ),
}


def moved(sess: object, now: Life, to: Life) -> Life:
    """*to*, if a session in the state *now* can move there; else the `NoSessionError` that names the misuse (a
    session entered twice; one used, or ended, in a state where it cannot be)."""
    if to in _MOVES[now]:
        return to
    if to is Life.OPEN:
        raise NoSessionError(_REENTERED.format(sess=sess))
    raise unusable(sess, now)


def unusable(sess: object, now: Life) -> NoSessionError:
    """The error for a session used in the state *now* (any but OPEN)."""
    return NoSessionError(_UNUSABLE[now].format(sess=sess))
