"""A legacy schema's stubs, as mypy sees them."""

from __future__ import annotations

from typing_extensions import assert_type

from pgdecor import session
from tests.usercode.legacy import Item, bundle, item_by_id, item_count, items_like, set_item


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
