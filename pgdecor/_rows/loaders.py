"""What a result column's values are in Python, and whether that is what a stub's annotation promises.

psycopg's own loaders turn each built-in type into one Python type (``int4`` → `int`, ``numeric`` → `Decimal`,
``timestamptz`` → `datetime`, a type it has no loader for → `str`). A column is accepted for an annotation only
when that type is the annotated one (an `int` also for `float`, as the numeric tower allows): never a conversion
that loses something (``numeric`` → `int`, ``float8`` → `int`, ``timestamp`` → `date`), never a value of another
type behind the annotation's back. Columns pgdecor cannot tell in advance (json, composites and enums, which are
shaped by the annotation; types with a loader of the user's) are left to what loads them.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import typing
import uuid
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import pq
from psycopg.abc import Loader
from psycopg.adapt import AdaptersMap

from pgdecor._annotations import describe

__all__ = ["fetches_binary", "loaded_type", "mismatch", "parsing_loaders"]

#: Built-in types by oid → the Python type psycopg's loaders give their values.
_LOADS: dict[int, type] = {
    16: bool,
    20: int, 21: int, 23: int, 26: int,  # int8, int2, int4, oid
    700: float, 701: float,
    1700: Decimal,
    18: str, 19: str, 25: str, 1042: str, 1043: str,  # "char", name, text, bpchar, varchar
    17: bytes,
    1082: dt.date,
    1114: dt.datetime, 1184: dt.datetime,
    1083: dt.time, 1266: dt.time,
    1186: dt.timedelta,
    2950: uuid.UUID,
    2249: tuple,  # record, whose fields psycopg reads as they come
}  # fmt: skip

#: The SQL type to cast a column to, in the advice, for a value of each Python type.
_CAST = {
    bool: "boolean",
    int: "bigint",
    float: "float8",
    Decimal: "numeric",
    str: "text",
    bytes: "bytea",
    dt.date: "date",
    dt.datetime: "timestamptz",
    dt.time: "time",
    dt.timedelta: "interval",
    uuid.UUID: "uuid",
}

_TEXT = pq.Format.TEXT
_BINARY = pq.Format.BINARY
_TEXT_OID = 25

#: psycopg's cursors that bind parameters on the client, which fetch text results only.
_CLIENT_CURSORS = (psycopg.ClientCursor, psycopg.AsyncClientCursor)


def loaded_type(oid: int, adapters: AdaptersMap) -> type | None:
    """The Python type of values of the column type *oid* as *adapters* load them (``list`` for a built-in array);
    None where pgdecor cannot tell (not a built-in type, or a loader that is not psycopg's own)."""
    info = psycopg.adapters.types.get(oid)
    if info is None:
        return None
    loader = adapters.get_loader(oid, _TEXT)
    if loader is not None and not loader.__module__.startswith(("psycopg.", "psycopg_c.", "psycopg_binary.")):
        return None  # a loader of the user's: its values are what it makes
    if info.array_oid == oid:  # psycopg finds an array's element by the array's oid
        return list
    if loader is None:  # no loader: psycopg gives the text the server sent
        return str
    return _LOADS.get(oid)


def fetches_binary(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether *conn*'s cursors can fetch binary results: client-side binding cursors (Django's, or a
    ``cursor_factory=ClientCursor`` of the user's) cannot."""
    return not issubclass(conn.cursor_factory, _CLIENT_CURSORS)


def parsing_loaders(adapters: AdaptersMap) -> list[tuple[int, type[Loader]]]:
    """psycopg's own loaders of the built-in types that *adapters* read as plain text, though psycopg parses them
    (Django's connections read jsonb, inet and cidr so, to parse them in its fields): pgdecor's calls load those as
    psycopg does, so that a stub returns the same values on every connection, and the layouts pgdecor keeps per
    server fit them all. Loaders of the user's own are kept. Each loader says its format (text or binary)."""
    return [(oid, loader) for oid, fmt, plain, loader in _parsed() if adapters.get_loader(oid, fmt) is plain]


@functools.cache
def _parsed() -> list[tuple[int, pq.Format, type[Loader] | None, type[Loader]]]:
    """The built-in types psycopg parses, in each format: their oid, the format, the loader of plain text in
    that format, and psycopg's own loader of the type."""
    found = []
    for fmt in (_TEXT, _BINARY):
        plain = psycopg.adapters.get_loader(_TEXT_OID, fmt)
        for info in psycopg.adapters.types:
            loader = psycopg.adapters.get_loader(info.oid, fmt)
            if loader is not None and loader is not plain:
                found.append((info.oid, fmt, plain, loader))
    return found


def mismatch(tp: Any, oid: int, adapters: AdaptersMap) -> tuple[str, str] | None:
    """Why a column of type *oid* cannot be a value of the annotation *tp* (``| None`` and ``Annotated``
    removed), and the fix; None when it can, or when pgdecor cannot tell."""
    loaded = loaded_type(oid, adapters)
    if loaded is None or tp is Any or isinstance(tp, typing.TypeVar):
        return None
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        kinds = {type(v) for v in typing.get_args(tp)}
        fits = kinds <= {loaded} or (loaded is str and all(issubclass(k, str) for k in kinds))
    elif origin in (list, tuple) or tp in (list, tuple):
        fits = loaded is (origin or tp)
    elif origin is not None or not isinstance(tp, type):
        return None  # unions, NewTypes and the like: left to what loads them
    elif issubclass(tp, enum.Enum):
        fits = loaded is str or (loaded is int and issubclass(tp, int))
    else:
        fits = loaded is tp or (tp is float and loaded is int)
    if fits:
        return None
    info = psycopg.adapters.types.get(oid)
    sql = f"type {oid}" if info is None else f"{info.name}[]" if info.array_oid == oid else info.name
    read = loaded.__qualname__
    if loaded is list and info is not None:
        element = _LOADS.get(info.oid)
        read = f"list[{element.__qualname__ if element is not None else 'str'}]"
    found = f"is {sql}, read as {read}, not {describe(tp)}"
    cast = _CAST.get(tp) if isinstance(tp, type) and loaded is not list else None
    lossy = " (which rounds or truncates)" if loaded in (Decimal, float, dt.datetime) and tp in (int, dt.date) else ""
    fix = f"annotate it `{read}`"
    if cast is not None:
        fix += f", or cast it in the SQL to {cast}{lossy} (`::{cast}`)"
    return found, fix
