"""`pgdecor check` for COPY stubs (`pgdecor.copy_in`, `pgdecor.copy_out`): the table exists, has a column for
each field of the row type, of a type that fits the field's annotation, and, for a COPY out, no nullable column
for a field not annotated ``| None``; for a COPY in, no generated column among them, and no column left out that
would refuse every row (NOT NULL, without a default).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import tuple_row

from pgdecor._annotations import describe
from pgdecor._plan.catalog import TYPES_QUERY, read_types
from pgdecor._plan.copy import COLUMNS_QUERY, CopyPlan, Direction, read_columns
from pgdecor._plan.matching import compatible

__all__ = ["copy_problems"]


def copy_problems(plan: CopyPlan, conn: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    """What does not match between the COPY stub *plan* and its table, each as (what the database has, what the
    stub says, how to make them agree)."""
    cur = conn.cursor(row_factory=tuple_row)
    relation = read_columns(cur.execute(COLUMNS_QUERY, [plan.identifier.as_string(conn)]).fetchall())
    decorator = f"@{plan.direction.value}({plan.name!r})"
    if relation is None:
        return [(f"there is no table {plan.name}", decorator, "create it, or name the table the stub copies")]
    columns = {c.name: c for c in relation[1]}
    oids = sorted({c.oid for c in columns.values()})
    types = read_types(cur.execute(TYPES_QUERY, {"oids": oids}).fetchall()) if oids else {}
    target = describe(plan.row_type)
    copy_in = plan.direction is Direction.IN
    problems: list[tuple[str, str, str]] = []
    for f in plan.record.fields:
        where = f"field {target}.{f.name}: {describe(f.annotation)}"
        column = columns.get(f.name)
        if column is None:
            if copy_in or not f.has_default:
                fix = "add the column, or " + ("leave the field out" if copy_in else "give the field a default")
                problems.append((f"table {plan.name} has no column {f.name!r}", where, fix))
            continue
        if copy_in and column.generated:
            problems.append((f"column {f.name!r} is generated: a COPY cannot write it", where, "leave the field out"))
        pgtype = types.get(column.oid)
        if pgtype is not None and not compatible(f.annotation, pgtype):
            problems.append(
                (
                    f"column {f.name!r} is {column.sql}",
                    where,
                    f"annotate the field with a type that fits {column.sql}, or change the column",
                )
            )
        if not copy_in and not column.not_null and not f.nullable:
            problems.append(
                (
                    f"column {f.name!r} may be NULL ({plan.name}.{f.name} is not NOT NULL)",
                    where,
                    f"annotate it `{describe(f.annotation)} | None`, or add NOT NULL to the column",
                )
            )
    if copy_in:
        fields = {f.name for f in plan.record.fields}
        problems.extend(
            (
                f"column {column.name!r} of {plan.name} is NOT NULL, with no default",
                f"{target} has no field {column.name!r}",
                "add the field, or give the column a default: a COPY without it stores no row",
            )
            for column in columns.values()
            if column.name not in fields and column.not_null and not column.has_default
        )
    return problems
