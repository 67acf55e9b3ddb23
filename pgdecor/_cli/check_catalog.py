"""What `pgdecor check` asks the catalog, looked up once for the whole check (stubs share their types): types,
the labels of enum types, and which columns of a result may be NULL, with how else than ``| None`` each could be
made NOT NULL. Every query runs on the check's read-only connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import tuple_row

from pgdecor._plan.catalog import ENUM_LABELS, TYPES_QUERY, Function, PgType, read_types
from pgdecor._plan.statement import Statement

__all__ = ["Catalog"]


class Catalog:
    """What the catalog said about types, kept for the whole check."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._types: dict[int, PgType] = {}
        self._labels: dict[int, list[str]] = {}

    def rows(self, query: str, params: Any) -> list[tuple[Any, ...]]:
        """The rows of a catalog query, as tuples whatever the connection's row factory."""
        return self.conn.cursor(row_factory=tuple_row).execute(query, params).fetchall()

    def types(self, oids: Iterable[int]) -> dict[int, PgType]:
        known = self._types
        missing = sorted(set(oids) - set(known))
        if missing:
            known.update(read_types(self.rows(TYPES_QUERY, {"oids": missing})))
        return known

    def labels(self, pgtype: PgType) -> list[str]:
        """The labels of the enum type *pgtype*, in their order."""
        labels = self._labels.get(pgtype.oid)
        if labels is None:
            rows = self.rows(ENUM_LABELS, [pgtype.oid])
            labels = self._labels[pgtype.oid] = [label for (label,) in rows]
        return labels

    def nullable_columns(
        self, res: pq.abc.PGresult, statement: Statement, function: Function | None
    ) -> dict[str, tuple[str, str]]:
        """Columns the catalog says may be NULL: of a table (in a query) or of the row type *function* returns
        (that of a @procedure stub); each with what it is and how else than `| None` it could be made NOT NULL (a
        table's column can be declared so; a composite type's attribute cannot, but its type can be a domain that
        is)."""
        out: dict[str, tuple[str, str]] = {}
        for i in range(res.nfields):
            table, column = res.ftable(i), res.ftablecol(i)
            if table:
                for where, kind, oid in self.rows(_COLUMN_NULLABLE, [table, column]):
                    self._nullable(out, (res.fname(i) or b"").decode(), where, kind, oid)
        if function is not None and not statement.value and (function.returns_set or function.returns_composite):
            for name, where, kind, oid in self.rows(_ROWTYPE_NULLABLE, [function.rettype]):
                if name not in out:
                    self._nullable(out, name, where, kind, oid)
        return out

    def _nullable(self, out: dict[str, tuple[str, str]], name: str, where: str, kind: str, oid: int) -> None:
        """Add the column *name* (*where*, of a relation of relkind *kind*, its type *oid*) to *out* unless its type is
        a domain declared NOT NULL."""
        if self.types([oid])[oid].not_null:
            return
        if kind == "c":
            out[name] = (
                f"{where} is an attribute of a composite type",
                ", or make its type a domain declared NOT NULL",
            )
        elif kind in ("r", "p", "f"):
            out[name] = (f"{where} is not NOT NULL", ", or add NOT NULL to the column")
        else:
            out[name] = (f"{where} is a column of a view", "")


# Operators, functions and types named with their schema, whatever the search_path (see `_plan.catalog`).

#: A table's (or view's) column that may be NULL: its name, the relation's kind and the column's type.
_COLUMN_NULLABLE = """
SELECT pg_catalog.concat(a.attrelid::pg_catalog.regclass, '.', a.attname), c.relkind::pg_catalog.text,
       a.atttypid::pg_catalog.int8
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
WHERE a.attrelid OPERATOR(pg_catalog.=) %s::pg_catalog.oid AND a.attnum OPERATOR(pg_catalog.=) %s::pg_catalog.int2
  AND NOT a.attnotnull
"""

#: Nullable attributes of the table, view or composite type a function returns, as `_COLUMN_NULLABLE` gives them.
_ROWTYPE_NULLABLE = """
SELECT a.attname::pg_catalog.text, pg_catalog.concat(t.oid::pg_catalog.regtype, '.', a.attname),
       c.relkind::pg_catalog.text, a.atttypid::pg_catalog.int8
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.typrelid
JOIN pg_catalog.pg_attribute a
  ON a.attrelid OPERATOR(pg_catalog.=) t.typrelid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
WHERE t.oid OPERATOR(pg_catalog.=) %s::pg_catalog.oid AND NOT a.attnotnull
"""
