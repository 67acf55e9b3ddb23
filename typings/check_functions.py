"""Typing of models, DEFAULT, VARIADIC, Annotated PostgreSQL types and error maps."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

from typing_extensions import assert_type

from pgdecor import DEFAULT, NotFoundError, procedure, query


@dataclass
class Order:
    id: int
    total: int


@dataclass
class Member:
    id: int
    name: str

    @staticmethod
    @procedure("get_member")
    def load(id: int) -> Member | None: ...

    @procedure("delete_member")
    def delete(self) -> None: ...

    @procedure("rename_member")
    def rename(self, name: str) -> Member: ...

    @query("UPDATE members SET name = %(name)s WHERE id = %(id)s")
    def set_name(self, name: str) -> None: ...

    @cached_property
    @procedure("member_orders")
    def orders(self) -> list[Order]: ...


@procedure
def greet(name: str, greeting: str = DEFAULT, punct: str = DEFAULT) -> str: ...


@procedure
def total(label: str, *nums: int) -> str: ...


@procedure("size")
def big_size(x: Annotated[int, "bigint"]) -> str: ...


@procedure(errors={"P0002": NotFoundError, "23505": ValueError})
def find_thing(id: int) -> str: ...


def models(member: Member) -> None:
    assert_type(Member.load(1), Member | None)
    assert_type(member.rename("robert"), Member)
    assert_type(member.delete(), None)
    assert_type(member.set_name("x"), None)
    assert_type(member.orders, list[Order])
    member.rename(1)  # type: ignore[arg-type]
    member.delete(1)  # type: ignore[call-arg]
    member.orders()  # type: ignore[operator]
    Member.load("1")  # type: ignore[arg-type]


def arguments() -> None:
    assert_type(greet("ann"), str)
    assert_type(greet("ann", punct="?"), str)
    assert_type(total("sum=", 1, 2, 3), str)
    assert_type(big_size(1), str)
    assert_type(find_thing(1), str)
    greet("ann", 1)  # type: ignore[arg-type]
    total("sum=", "1")  # type: ignore[arg-type]
    procedure(errors={"P0002": 42})  # type: ignore[dict-item]
