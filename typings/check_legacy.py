"""A legacy schema's stubs, as mypy sees them."""

from __future__ import annotations

from dataclasses import dataclass

from typing_extensions import assert_type

from pgdecor import procedure, session


@dataclass
class Item:
    id: int
    value: str | None


@dataclass
class Bundle:
    head: Item
    rest: list[Item]


@procedure("get_item")
def item_by_id(id: int) -> Item | None: ...


@procedure("get_item")
def items_like(pattern: str) -> list[Item]: ...


@procedure
def bundle(id: int) -> Bundle | None: ...


@procedure
def item_count() -> int: ...


@procedure
def set_item(id: int, value: str | None) -> bool: ...


def use() -> None:
    with session("postgresql:///legacy"):
        assert_type(item_by_id(1), Item | None)
        assert_type(items_like("t%"), list[Item])
        found = bundle(1)
        assert found is not None
        assert_type(found.rest, list[Item])
        assert_type(item_count(), int)
        assert_type(set_item(1, None), bool)
        item_by_id("1")  # type: ignore[arg-type]
        items_like(1)  # type: ignore[arg-type]
        set_item(1)  # type: ignore[call-arg]
        found.head.name  # type: ignore[attr-defined]
