"""The ORMs' sessions as users' code sees them: what the checkers infer, and the misuse they reject."""

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session as OrmSession
from typing_extensions import assert_type

import pgdecor.django
import pgdecor.sqlalchemy
from pgdecor import Session


def in_django() -> None:
    with pgdecor.django.session() as s:
        assert_type(s, Session)
    with pgdecor.django.session("replica") as s:
        assert_type(s.commit_token, str | None)
    pgdecor.django.session(using=1)  # type: ignore[arg-type]


def in_sqlalchemy(db: OrmSession, conn: Connection, engine: Engine) -> None:
    with pgdecor.sqlalchemy.session(db) as s:
        assert_type(s, Session)
    with pgdecor.sqlalchemy.session(conn) as s:
        assert_type(s, Session)
    pgdecor.sqlalchemy.session(engine)  # type: ignore[arg-type]


async def in_async_sqlalchemy(db: AsyncSession, conn: AsyncConnection, sync: OrmSession) -> None:
    async with pgdecor.sqlalchemy.asession(db) as s:
        assert_type(s, Session)
    async with pgdecor.sqlalchemy.asession(conn) as s:
        assert_type(s, Session)
    pgdecor.sqlalchemy.asession(sync)  # type: ignore[arg-type]
