"""Rows out of a COPY: the rows of a COPY out of a COPY stub's table → values of its row type (`RowsOut`), made by
`layouts` as a call's rows are: in binary where every column loads the same from binary as from text and none is
a composite, a domain or an enum, in text otherwise.
"""

from __future__ import annotations

from psycopg import pq
from psycopg.adapt import AdaptersMap

from .copy_format import Column
from .layouts import Layout
from .mapping import RowMapper
from .registry import ServerKey, TypeRegistry

__all__ = ["RowsOut"]

_BINARY = pq.Format.BINARY
_TEXT = pq.Format.TEXT


class RowsOut:
    """How the rows of a COPY out of the table's columns become values of a COPY stub's row type."""

    __slots__ = ("binary", "make", "names", "types")

    def __init__(
        self,
        stub: str,
        table: str,
        row_type: type,
        columns: list[Column],
        *,
        key: ServerKey,
        registry: TypeRegistry,
        adapters: AdaptersMap,
    ) -> None:
        mapper = RowMapper(stub, f"the COPY of {table}", row_type, scalar=False, nullable=False)
        self.names = [c.name for c in columns]
        #: The types psycopg loads each column's values as: a domain's base type's, as in a call's result.
        self.types = [c.oid for c in columns]
        layout_key = (*((key,) if mapper.uses_registry else ()), *(n.encode() for n in self.names), *self.types)
        layout: Layout = mapper.build(layout_key, registry if mapper.uses_registry else None, adapters)
        self.binary = layout.binary and all(c.kind not in ("c", "d", "e") for c in columns)
        #: Rows (tuples of loaded values) → values of the row type, a batch at a time.
        self.make = layout.many

    @property
    def format(self) -> pq.Format:
        return _BINARY if self.binary else _TEXT
