"""The same call written by hand: a stub's function called through psycopg with explicit casts, its rows as
``to_jsonb`` gives them, and a comparison of those with what the stub returned."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import ipaddress
import typing
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.multirange import Multirange
from psycopg.types.range import Range

#: A schema's functions: their regprocedure, names, argument types (spelled for a cast, NULL for a polymorphic one,
#: which takes the value's own type) and kinds.
FUNCTIONS = """
SELECT p.oid::regproc::text, p.proname::text, p.prokind::text, p.provariadic <> 0,
       p.prorettype = 'record'::regtype AND NOT p.proretset AND p.proallargtypes IS NULL,
       array(SELECT t.typname::text FROM unnest(p.proargtypes) WITH ORDINALITY a(oid, n)
             JOIN pg_type t ON t.oid = a.oid ORDER BY a.n),
       array(SELECT CASE WHEN t.typtype <> 'p' THEN format_type(a.oid, NULL) END
             FROM unnest(p.proargtypes) WITH ORDINALITY a(oid, n) JOIN pg_type t ON t.oid = a.oid ORDER BY a.n)
FROM pg_proc p WHERE p.pronamespace = %s::regnamespace AND p.prokind IN ('f', 'p')
"""


#: What `rows_by_hand` stands for when the call by hand failed.
REFUSED: list[Any] = []


def rows_by_hand(conn: psycopg.Connection[Any], schema: str, stub: Any, args: list[Any]) -> list[Any] | None:
    """The rows (as JSON) of the function the generated *stub* calls (the one its decorator names; an overload's,
    the one whose argument types its name ends with), given *args*; None for a procedure."""
    name = stub.__pgdecor_plan__().call.name[-1]
    found = [row for row in conn.execute(FUNCTIONS, [sql.Identifier(schema).as_string(conn)]).fetchall()
             if row[1] == name]  # fmt: skip
    suffix = stub.__name__.partition("__")[2] if len(found) > 1 else ""
    candidates = [
        row for row in found
        if (not suffix or "_".join(row[5]) == suffix)
        and (len(row[5]) == len(args) or (row[3] and len(args) >= len(row[5]) - 1))
    ]  # fmt: skip
    [(function, _, kind, variadic, record, _, types)] = candidates
    if kind == "p":
        return None
    if variadic:  # the stub's *args are the array's items
        args = [*args[: len(types) - 1], list(args[len(types) - 1 :])]
    casts = [
        sql.SQL("{}{}{}").format(
            sql.SQL("VARIADIC " if variadic and i == len(types) - 1 else ""),
            sql.Placeholder(),
            sql.SQL("" if t is None else f"::{t}"),
        )
        for i, t in enumerate(types)
    ]
    # An undeclared record cannot be selected FROM without a column definition list: as a value, then.
    form = "SELECT to_jsonb({}({}))" if record else "SELECT to_jsonb(r) FROM {}({}) AS r"
    query = sql.SQL(form).format(sql.SQL(function), sql.SQL(", ").join(casts))
    values = [plain(a) for a in args]
    return [row[0] for row in conn.execute(query, values).fetchall()]


def plain(value: Any) -> Any:
    """An argument as psycopg sends it by hand: enums as their labels, a dataclass as the record of its fields."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return tuple(plain(getattr(value, f.name)) for f in dataclasses.fields(value))
    return value


def same_result(result: Any, rows: list[Any], annotation: Any) -> bool:
    """Whether a stub's *result* is what the *rows* by hand say, for a stub annotated *annotation*."""
    if annotation in (None, type(None)):  # a function returning void: nothing
        return result is None
    if typing.get_origin(annotation) is list:  # rows (a function returning one array is annotated `... | None`)
        return len(result) == len(rows) and all(same(r, j) for r, j in zip(result, rows, strict=True))
    if result is None:  # no row, a NULL value, or a NULL composite (all its fields NULL)
        return not rows or rows[0] is None or (isinstance(rows[0], dict) and all(v is None for v in rows[0].values()))
    return len(rows) == 1 and same(result, rows[0])


def same(value: Any, js: Any) -> bool:
    """Whether *value* (as a stub returned it) is the JSON value *js* (as the server rendered it)."""
    if value is None or js is None:
        return value is None and js is None
    if isinstance(value, enum.Enum):
        return bool(js == value.value)
    if isinstance(value, bool):
        return value is js
    if isinstance(value, (int, float, Decimal)):
        return Decimal(str(js)) == Decimal(str(value))
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return bool(type(value).fromisoformat(js) == value)
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network,
                          ipaddress.IPv6Network)):  # fmt: skip
        return bool(str(value) == js)
    if isinstance(value, Multirange):
        parts = [p + ")" if not p.endswith((")", "]")) else p for p in js.strip("{}").split("),") if p]
        return len(parts) == len(value) and all(same(r, p) for r, p in zip(value, parts, strict=True))
    if isinstance(value, Range):
        return _same_range(value, js)
    if dataclasses.is_dataclass(value):  # each field by the column it is filled from
        return isinstance(js, dict) and all(
            same(getattr(value, f.name), js.get(f.metadata.get("column", f.name))) for f in dataclasses.fields(value)
        )
    if isinstance(value, tuple):  # an undeclared record: its fields as text (jsonb orders keys its own way)
        return isinstance(js, dict) and sorted(str(j) for j in js.values()) == sorted(value)
    if isinstance(value, list):
        return (
            isinstance(js, list) and len(js) == len(value) and all(same(v, j) for v, j in zip(value, js, strict=True))
        )
    return bool(value == js)


def _same_range(value: Range[Any], js: str) -> bool:
    if value.isempty:
        return js == "empty"
    lower, _, upper = js[1:-1].partition(",")
    bounds = js[0] + js[-1]
    return bounds == value.bounds and _same_bound(value.lower, lower) and _same_bound(value.upper, upper)


def _same_bound(value: Any, text: str) -> bool:
    text = text.strip('"')
    if value is None:
        return text == ""
    if isinstance(value, dt.datetime):
        return dt.datetime.fromisoformat(text) == value
    return same(value, text)
