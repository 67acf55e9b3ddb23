"""What mypy infers from decorated stubs (the tests' user module), and the misuse it rejects."""

from collections.abc import Coroutine, Iterator, Sequence
from typing import Any

from typing_extensions import assert_type

from pgdecor import AsyncStream, Stream, query, session, transaction
from tests.usercode.userdb import (
    User,
    aeach_user,
    aget_user,
    all_users,
    count_users,
    each_user,
    get_user,
    load_user,
    set_email,
    user_row,
    users_by_domain,
)


@query("SELECT * FROM app.users")
def user_stream() -> Stream[User]: ...


@query("SELECT * FROM app.users")
async def auser_stream() -> AsyncStream[User]: ...


def results() -> None:
    with session("postgresql:///app"):
        assert_type(get_user(1), User | None)
        assert_type(get_user(id=1), User | None)
        assert_type(load_user(1), User)
        assert_type(users_by_domain("example.org"), list[User])
        assert_type(users_by_domain("example.org", limit=5), list[User])
        assert_type(count_users(), int)
        assert_type(set_email(1, None), None)
        assert_type(each_user(), Iterator[User])
        assert_type(all_users(), Sequence[User])
        assert_type(user_row(1), dict[str, Any])
        with user_stream() as stream:
            assert_type(next(stream), User)
        with transaction():
            pass


def batches() -> None:
    with session("postgresql:///app"):
        assert_type(get_user.many([(1,), {"id": 2}]), list[User | None])
        assert_type(users_by_domain.many([("example.org", 5)]), list[list[User]])
        assert_type(set_email.many([(1, None)]), None)
        get_user.many([1])  # type: ignore[list-item]


async def async_batches() -> None:
    async with session("postgresql:///app"):
        assert_type(await aget_user.many([(1,)]), list[User | None])  # ty: ignore[type-assertion-failure]


async def async_results() -> None:
    async with session("postgresql:///app"):
        coro: Coroutine[Any, Any, User | None] = aget_user(1)
        assert_type(await coro, User | None)
        await aget_user("1")  # type: ignore[arg-type]
        assert_type(await aget_user(1), User | None)
        async for user in aeach_user():
            assert_type(user, User)
        async with await auser_stream() as stream:
            assert_type(await anext(stream), User)
        async with transaction():
            pass


def attributes() -> None:
    assert_type(get_user.sql, str | None)
    assert_type(get_user.__name__, str)


def misuse() -> None:
    with session("postgresql:///app"):
        get_user("1")  # type: ignore[arg-type]
        get_user()  # type: ignore[call-arg]
        get_user(1, 2)  # type: ignore[call-arg]
        get_user(ident=1)  # type: ignore[call-arg]
        set_email(1)  # type: ignore[call-arg]
        users_by_domain("example.org", limit="5")  # type: ignore[arg-type]
        get_user(1).name  # type: ignore[union-attr]
        load_user(1).nickname  # type: ignore[attr-defined]
        count_users().upper()  # type: ignore[attr-defined]
    session(42)  # type: ignore[arg-type]
