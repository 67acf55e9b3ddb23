"""Stubs over a schema in the style of older PostgreSQL code: unnamed parameters, overloads, composites."""

from __future__ import annotations

from dataclasses import dataclass

from pgdecor import procedure

SCHEMA = """
CREATE TABLE items (id int PRIMARY KEY, value text);
INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four');

-- Overloads with unnamed parameters: one single-row, one set-returning.
CREATE FUNCTION get_item(int) RETURNS items LANGUAGE sql
AS $$ SELECT * FROM items WHERE id = $1 $$;
CREATE FUNCTION get_item(text) RETURNS SETOF items LANGUAGE sql
AS $$ SELECT * FROM items WHERE value LIKE $1 ORDER BY id $$;

-- A composite holding a row and an array of rows.
CREATE TYPE item_bundle AS (head items, rest items[]);
CREATE FUNCTION bundle(int) RETURNS item_bundle LANGUAGE sql
AS $$ SELECT ROW(h.*)::items, ARRAY(SELECT i FROM items i WHERE i.id > $1 ORDER BY i.id)
      FROM items h WHERE h.id = $1 $$;

CREATE FUNCTION item_count() RETURNS int LANGUAGE sql AS $$ SELECT count(*)::int FROM items $$;

CREATE FUNCTION set_item(int, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE items SET value = $2 WHERE id = $1;
    RETURN FOUND;
END $$;
"""


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
