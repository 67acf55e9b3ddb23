"""`Lending`: what the sources of the user's own objects share, a psycopg_pool pool or a psycopg connection, each
serving sessions of its own kind only (`user_objects_async` and its generated twin `user_objects`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from psycopg import AsyncConnection, Connection

from pgdecor._errors import ArgumentError

from .guard import LeakGuard
from .replicas import Health, health_of
from .source import BaseSource

__all__ = ["Lending"]

T = TypeVar("T")


class Lending(BaseSource, Generic[T]):
    """A source made of an object of the user's (see the module docstring): *given* itself, and the leak guard of
    the sessions on it."""

    __slots__ = ("_given", "guard")

    #: The kind of session the object serves: async (else sync).
    is_async: ClassVar[bool]
    configured = False  # the user's: probed once, at its first use

    def __init__(self, given: T, guard: LeakGuard) -> None:
        self._given = given
        self.guard = guard

    @property
    def key(self) -> object:
        return self._given

    @property
    def health(self) -> Health:
        return health_of(id(self._given), repr(self._given))

    def describe(self) -> str:
        return type(self._given).__qualname__

    def serves(self, *, is_async: bool) -> bool:
        return is_async is self.is_async

    def own_connection(self, what: str) -> tuple[str, dict[str, Any]]:
        msg = (
            f"{what} takes a Database or a conninfo string, where it opens a connection of its own to listen on, not "
            f"{self.describe()}: a pooled or borrowed connection cannot listen, as it serves other sessions in between"
        )
        raise ArgumentError(msg)

    # The other kind's: sessions of that kind are refused when they are entered (see `serves`), before any borrow.

    async def aconnect(self, timeout: float | None) -> AsyncConnection[Any]:  # noqa: ARG002 - refused
        raise self._refused()

    async def agive_back(self, conn: AsyncConnection[Any]) -> None:  # noqa: ARG002 - refused
        raise self._refused()

    def connect(self, timeout: float | None) -> Connection[Any]:  # noqa: ARG002 - refused
        raise self._refused()

    def give_back(self, conn: Connection[Any]) -> None:  # noqa: ARG002 - refused
        raise self._refused()

    def _refused(self) -> ArgumentError:
        how = "`async with session(...)`" if self.is_async else "`with session(...)`"
        return ArgumentError(f"session({self.describe()}) must be entered with {how}")
