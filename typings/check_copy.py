"""What type checkers infer from COPY stubs (`copy_in`, `copy_out`), and the misuse they reject."""

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

from typing_extensions import assert_type

from pgdecor import AsyncCopyStream, CopyStream, copy_in, copy_out, session


@dataclass
class User:
    id: int
    name: str


@copy_in("app.users")
def load_users(rows: Iterable[User]) -> int: ...


@copy_in("app.users")
async def aload_users(rows: Iterable[User] | AsyncIterable[User]) -> int: ...


@copy_out("app.users")
def export_users() -> Iterator[User]: ...


@copy_out("app.users")
def closable_users() -> CopyStream[User]: ...


@copy_out("app.users")
def aexport_users() -> AsyncIterator[User]: ...


@copy_out("app.users")
async def aclosable_users() -> AsyncCopyStream[User]: ...


def copies(users: list[User]) -> None:
    with session("postgresql:///app"):
        assert_type(load_users(users), int)
        assert_type(load_users(u for u in users), int)
        assert_type(export_users(), Iterator[User])
        with closable_users() as stream:
            assert_type(next(stream), User)
        assert_type(load_users.sql, str | None)
        assert_type(load_users.table, str)
        load_users([1, 2])  # type: ignore[list-item]
        load_users(users, users)  # type: ignore[call-arg]


async def async_copies(users: list[User]) -> None:
    async def rows() -> AsyncIterator[User]:
        for user in users:
            yield user

    async with session("postgresql:///app"):
        assert_type(await aload_users(users), int)
        assert_type(await aload_users(rows()), int)
        assert_type([user async for user in aexport_users()], list[User])
        async with await aclosable_users() as stream:
            assert_type(await stream.__anext__(), User)
        load_users(rows())  # type: ignore[arg-type]
