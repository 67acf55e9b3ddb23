"""Models: methods bound to stored functions, loading by key, lazily loaded attributes."""

import pytest

from pgdecor import ArgumentError, session
from tests.fix_db import Exec
from tests.usercode.models import Member, Order

SCHEMA = """
CREATE TABLE members (id int PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES members, total int);
INSERT INTO members VALUES (1, 'ann', NULL), (2, 'bob', NULL);
INSERT INTO orders VALUES (10, 1, 5), (11, 1, 7), (12, 2, 1);

CREATE FUNCTION get_member(id int) RETURNS SETOF members LANGUAGE sql
AS $$ SELECT * FROM members m WHERE m.id = get_member.id $$;
CREATE FUNCTION delete_member(id int) RETURNS void LANGUAGE sql
AS $$ DELETE FROM orders o WHERE o.user_id = delete_member.id; DELETE FROM members m WHERE m.id = delete_member.id $$;
CREATE FUNCTION rename_member(id int, name text) RETURNS members LANGUAGE sql
AS $$ UPDATE members m SET name = rename_member.name WHERE m.id = rename_member.id RETURNING * $$;
CREATE FUNCTION member_orders(id int) RETURNS SETOF orders LANGUAGE sql
AS $$ SELECT * FROM orders o WHERE o.user_id = member_orders.id ORDER BY o.id $$;
"""


@pytest.fixture
def members(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(SCHEMA)
    return pg_dsn


def test_load_by_key_through_a_static_method(members: str) -> None:
    """`Member.load(id)` is a plain stub kept on the class."""
    with session(members):
        assert Member.load(1) == Member(1, "ann", None)
        assert Member.load(id=99) is None


def test_method_fills_function_parameters_from_the_instance(members: str) -> None:
    """`member.delete()` calls delete_member(id => member.id)."""
    with session(members):
        ann = Member.load(1)
        assert ann is not None
        ann.delete()
        assert Member.load(1) is None


def test_method_mixes_instance_fields_and_call_arguments(members: str) -> None:
    """Function parameters the stub declares come from the call; the others from the instance."""
    with session(members):
        bob = Member.load(2)
        assert bob is not None
        assert bob.rename("robert") == Member(2, "robert", None)
    sent = Member.rename.sql  # type: ignore[attr-defined]  # the plugin types methods as plain methods
    assert (
        sent
        == 'SELECT * FROM "rename_member"("id" => %s::integer, "name" => %b::pg_catalog.text) AS r WHERE NOT (r IS NULL)'
    )


def test_query_method_takes_placeholders_from_the_instance(members: str) -> None:
    """In a @query method, a placeholder that is not a parameter is the instance's attribute."""
    with session(members):
        ann = Member.load(1)
        assert ann is not None
        ann.set_email("ann@example.org")
        assert Member.load(1) == Member(1, "ann", "ann@example.org")


def test_lazy_attribute_loads_once_on_first_access(members: str, pg_exec: Exec) -> None:
    """A cached_property over a stub loads at first access, then keeps its value."""
    with session(members):
        ann = Member.load(1)
        assert ann is not None
        assert ann.orders == [Order(10, 1, 5), Order(11, 1, 7)]
        pg_exec("DELETE FROM orders WHERE id = 11")
        assert ann.orders == [Order(10, 1, 5), Order(11, 1, 7)]


def test_instance_without_the_needed_attribute_is_a_clear_error(members: str) -> None:
    """A method on an object lacking the attribute a function parameter needs names both."""

    class Stranger:
        name = "x"

    with (
        pytest.raises(ArgumentError, match=r"taken from self\.id, but .*Stranger has no such attribute"),
        session(members),
    ):
        Member.delete(Stranger())  # type: ignore[arg-type]
