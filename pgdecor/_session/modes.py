"""How a session's transaction begins: its isolation level and whether it is read-only (both sent in the BEGIN),
or no transaction at all (autocommit: each call is one implicit transaction of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from psycopg import IsolationLevel

from pgdecor._errors import ArgumentError

__all__ = ["DEFAULT_MODE", "Isolation", "Mode", "mode"]

#: The isolation levels a session may ask for (PostgreSQL runs READ UNCOMMITTED as READ COMMITTED).
Isolation = Literal["read committed", "repeatable read", "serializable"]

_LEVELS = {
    "read committed": IsolationLevel.READ_COMMITTED,
    "repeatable read": IsolationLevel.REPEATABLE_READ,
    "serializable": IsolationLevel.SERIALIZABLE,
}


@dataclass(frozen=True)
class Mode:
    """A session's transaction mode (see `mode`)."""

    isolation: IsolationLevel | None = None
    readonly: bool = False
    autocommit: bool = False

    @property
    def sets_begin(self) -> bool:
        """Whether its BEGIN says more than the connection's defaults."""
        return self.isolation is not None or self.readonly

    @property
    def on_primary_only(self) -> bool:
        """Whether its reads must run on the primary too: a standby refuses SERIALIZABLE transactions (and their
        guarantee holds only among the primary's own)."""
        return self.isolation is IsolationLevel.SERIALIZABLE

    def describe(self) -> str:
        if self.autocommit:
            return "autocommit=True"
        parts = [f"isolation={self.isolation.name.lower().replace('_', ' ')!r}"] if self.isolation else []
        return ", ".join([*parts, *(["readonly=True"] if self.readonly else [])]) or "the default mode"


DEFAULT_MODE = Mode()


def mode(what: str, isolation: Isolation | IsolationLevel | None, readonly: bool, autocommit: bool) -> Mode:
    """The mode *what* (``session()``, ...) asks for, checked: a known isolation level, and no transaction options
    with autocommit (which begins no transaction)."""
    level: IsolationLevel | None
    if isolation is None or isinstance(isolation, IsolationLevel):
        level = isolation
    else:
        level = _LEVELS.get(str(isolation).lower())
        if level is None:
            known = ", ".join(map(repr, _LEVELS))
            msg = f"{what}: isolation={isolation!r} is not an isolation level; use one of {known}"
            raise ArgumentError(msg)
    if not (_is_bool(readonly) and _is_bool(autocommit)):
        msg = f"{what}: readonly= and autocommit= take True or False"
        raise ArgumentError(msg)
    if autocommit and (level is not None or readonly):
        msg = (
            f"{what}: autocommit=True begins no transaction, so isolation= and readonly= cannot apply; "
            f"drop them, or drop autocommit=True"
        )
        raise ArgumentError(msg)
    if level is None and not readonly and not autocommit:
        return DEFAULT_MODE
    return Mode(level, readonly, autocommit)


def _is_bool(value: object) -> bool:
    """Whether *value* is True or False, whatever the caller's annotations promised."""
    return isinstance(value, bool)
