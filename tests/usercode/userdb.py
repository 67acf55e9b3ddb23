"""Stubs shared by the tests, declared as a user would in their own module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pgdecor import procedure, query


@dataclass
class User:
    id: int
    name: str
    email: str | None


@procedure
def get_user(id: int) -> User | None: ...


@procedure("get_user")
def load_user(id: int) -> User: ...


@procedure
def users_by_domain(domain: str, limit: int = 100) -> list[User]: ...


@procedure
def user_name(id: int) -> str | None: ...


@query("SELECT count(*) FROM users")
def count_users() -> int: ...


@query("UPDATE users SET email = %(email)s WHERE id = %(id)s")
def set_email(id: int, email: str | None) -> None: ...


@query("SELECT * FROM users ORDER BY id")
def all_users() -> Sequence[User]: ...


@query("SELECT * FROM users ORDER BY id")
def each_user() -> Iterator[User]: ...


@query("SELECT id FROM users ORDER BY id")
def user_ids() -> list[int]: ...


@query("SELECT * FROM users WHERE id = %(id)s")
def user_row(id: int) -> dict[str, Any]: ...


@query("INSERT INTO users (id, name, email) VALUES (%(id)s, %(name)s, %(email)s)")
def add_user(id: int, name: str, email: str | None = None) -> None: ...


@procedure("get_user")
async def aget_user(id: int) -> User | None: ...


@procedure("get_user")
async def aload_user(id: int) -> User: ...


@procedure("users_by_domain")
async def ausers_by_domain(domain: str, limit: int = 100) -> list[User]: ...


@query("SELECT count(*) FROM users")
async def acount_users() -> int: ...


@query("SELECT id FROM users ORDER BY id")
async def auser_ids() -> list[int]: ...


@query("SELECT * FROM users WHERE id = %(id)s")
async def auser_row(id: int) -> dict[str, Any]: ...


@query("INSERT INTO users (id, name, email) VALUES (%(id)s, %(name)s, %(email)s)")
async def aadd_user(id: int, name: str, email: str | None = None) -> None: ...


@query("SELECT * FROM users ORDER BY id")
def aeach_user() -> AsyncIterator[User]: ...


@query("SELECT * FROM users ORDER BY id")
async def aeach_user_awaited() -> AsyncIterator[User]: ...


@query("SELECT * FROM users ORDER BY id")
async def aall_users() -> Sequence[User]: ...


@procedure("user_name")
async def auser_name(id: int) -> str | None: ...


@query("UPDATE users SET email = %(email)s WHERE id = %(id)s")
async def aset_email(id: int, email: str | None) -> None: ...
