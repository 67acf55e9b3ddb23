"""A legacy schema called through stubs: the Simpycity-era patterns, typed."""

import pytest

from pgdecor import session
from tests.fix_db import Exec
from tests.usercode.legacy import SCHEMA, Bundle, Item, bundle, item_by_id, item_count, items_like, set_item


@pytest.fixture
def legacy(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(SCHEMA)
    return pg_dsn


def test_overloads_with_unnamed_parameters(legacy: str) -> None:
    """get_item(int) is the single-row overload, get_item(text) the set-returning one."""
    with session(legacy):
        assert item_by_id(2) == Item(2, "two")
        assert item_by_id(99) is None
        assert items_like("t%") == [Item(2, "two"), Item(3, "three")]
    assert item_by_id.sql == 'SELECT * FROM "get_item"(%b::integer) AS r WHERE NOT (r IS NULL)'
    assert items_like.sql == 'SELECT * FROM "get_item"(%b::pg_catalog.text)'


def test_composite_of_a_row_and_an_array_of_rows(legacy: str) -> None:
    """A composite holding a row and an array of rows maps onto nested dataclasses."""
    with session(legacy):
        assert bundle(2) == Bundle(Item(2, "two"), [Item(3, "three"), Item(4, "four")])
        assert bundle(4) == Bundle(Item(4, "four"), [])
        assert bundle(99) is None


def test_scalar_function(legacy: str) -> None:
    """A function returning a scalar returns its value."""
    with session(legacy):
        assert item_count() == 4


def test_update_returning_boolean_is_visible_in_the_same_session(legacy: str) -> None:
    """An update through a function is seen by the next call of the same session, and committed at its end."""
    with session(legacy):
        assert set_item(1, "uno") is True
        assert set_item(99, "none") is False
        assert item_by_id(1) == Item(1, "uno")
        assert set_item(2, None) is True
        assert item_by_id(2) == Item(2, None)
    with session(legacy):
        assert item_by_id(1) == Item(1, "uno")
