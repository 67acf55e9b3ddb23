"""Stubs whose annotations name a class defined after them."""

from __future__ import annotations

from dataclasses import dataclass

from pgdecor import query


@query("SELECT id, name FROM users WHERE id = %(id)s")
def get_later(id: int) -> Later: ...


@query("SELECT id, name FROM users WHERE id = %(id)s")
async def aget_later(id: int) -> Later: ...


@dataclass
class Later:
    id: int
    name: str
