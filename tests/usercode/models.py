"""A model whose methods are stored functions, written as a user would."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from pgdecor import procedure, query


@dataclass
class Order:
    id: int
    user_id: int
    total: int


@dataclass
class Member:
    id: int
    name: str
    email: str | None

    @staticmethod
    @procedure("get_member")
    def load(id: int) -> Member | None: ...

    @procedure("delete_member")
    def delete(self) -> None: ...

    @procedure("rename_member")
    def rename(self, name: str) -> Member: ...

    @query("UPDATE members SET email = %(email)s WHERE id = %(id)s")
    def set_email(self, email: str | None) -> None: ...

    @cached_property
    @procedure("member_orders")
    def orders(self) -> list[Order]: ...
