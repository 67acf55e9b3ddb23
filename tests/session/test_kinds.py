"""What a session refuses for its kind, where it is given: a source no session takes, and a source, a stub or a
method of the other kind (sync or async) than the session's, each with an error saying what to do."""

import asyncio
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from pgdecor import ArgumentError, NoSessionError, retried, session
from pgdecor.wsgi import SessionMiddleware
from tests.usercode.userdb import aget_user, get_user


def test_session_rejects_unknown_sources_and_the_wrong_kind() -> None:
    """Bad sources and a sync `with` on an async source are refused up front."""
    with pytest.raises(ArgumentError, match="not int"):
        session(42)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match=r"session\(\) takes a Database, .* not NoneType None"):
        session(None)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match=r"session\(\) takes a Database, .* not int"):
        session("postgresql:///app", replica=7)  # type: ignore[arg-type]

    async def enter_sync_pool_async() -> None:
        with ConnectionPool("", open=False) as p:  # never opened: nothing connects
            async with session(p):
                pass

    with pytest.raises(ArgumentError, match="must be entered with `with session"):
        asyncio.run(enter_sync_pool_async())


def test_a_source_of_another_kind_is_refused_when_the_session_is_made() -> None:
    """What no session can take (a number, a SQLAlchemy engine) is refused where it is given, before any block
    runs, the error naming the kinds taken (and, for an ORM's object, what opens a session on its connection)."""
    from sqlalchemy import create_engine

    taken = (
        r"takes a Database, a conninfo string, a psycopg Connection or AsyncConnection, or a psycopg_pool "
        r"ConnectionPool or AsyncConnectionPool; not "
    )
    engine = create_engine("postgresql+psycopg://")  # connects to nothing until used
    with pytest.raises(ArgumentError, match=rf"^session\(\) {taken}Engine; pgdecor\.sqlalchemy\.session\(\.\.\.\)"):
        session(engine)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match=rf"^session\(\) {taken}int 42$"):
        session(42)  # type: ignore[arg-type]

    def app(environ: Any, start_response: Any) -> list[bytes]:
        return []

    with pytest.raises(ArgumentError, match=rf"^SessionMiddleware\(\) {taken}int 42$"):
        SessionMiddleware(app, 42)  # type: ignore[arg-type]
    ran: list[int] = []

    @retried()
    def unit(db: Any) -> None:
        ran.append(1)

    with pytest.raises(ArgumentError, match=rf"\.unit\(\) {taken}int 42$"):
        unit(42)
    assert ran == []


def test_async_stub_in_a_sync_session_is_a_clear_error(users: str) -> None:
    """Calling an async stub under `with session()` explains the mismatch."""

    async def call() -> None:
        with session(users):
            await aget_user(1)

    with pytest.raises(NoSessionError, match="is async but the current session is synchronous"):
        asyncio.run(call())


def test_sync_stub_in_an_async_session_is_a_clear_error(users: str) -> None:
    """Calling a sync stub under `async with session()` explains the mismatch."""

    async def call() -> None:
        async with session(users):
            get_user(1)

    with pytest.raises(NoSessionError, match="is synchronous but the current session is async"):
        asyncio.run(call())


def test_a_session_refuses_the_methods_of_the_other_kind(users: str) -> None:
    """A session entered with ``with`` refuses its async methods, and one entered with ``async with`` its sync
    ones, each error saying which to call."""
    with session(users) as s:
        with pytest.raises(NoSessionError, match=r"was entered with `with session\(...\)`: call its sync methods"):
            asyncio.run(s.aconnection())
        get_user(1)

    async def entered_async() -> None:
        async with session(users) as s:
            with pytest.raises(
                NoSessionError, match=r"entered with `async with session\(...\)`: await its async methods"
            ):
                s.connection()
            await aget_user(1)

    asyncio.run(entered_async())
