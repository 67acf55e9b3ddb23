"""The COPY data format, for the rows of COPY stubs: the columns of the table a stub names (`Column`), and whether
each travels in binary (`binary_oid`); the frame of binary COPY data; and the parsers of a row of binary or text
COPY data, where psycopg's own are not used (see `_wire.guard.copy_formats`).

A COPY is binary when psycopg has a binary form for every column's type (an enum's and a ``char(n)``'s binary form
is their text's), and text otherwise: the server then parses each value as it parses SQL literals, so that any
type it can read from text (``tsvector``, ``money``, composites, ``hstore``, arrays of enums) can be copied.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import AdaptersMap

from .registry import is_builtin

__all__ = ["BINARY_HEADER", "BINARY_TRAILER", "Column", "binary_oid", "parse_binary", "parse_text"]

_TEXT_OID, _BPCHAR_OID = 25, 1042

#: What binary COPY data begins with (a signature, no flags, no header extension) and ends with.
BINARY_HEADER = b"PGCOPY\n" + bytes([0xFF, 0x0D, 0x0A, 0x00]) + bytes(8)
BINARY_TRAILER = bytes([0xFF, 0xFF])


@dataclass(frozen=True)
class Column:
    """What the catalog says of one column of the table a COPY stub names."""

    name: str
    #: The oid of its type; for a domain, of the domain's base type (as results describe it).
    oid: int
    #: Its type, as SQL spells it (``character varying(40)``).
    sql: str
    #: ``pg_type.typtype`` of that type: b(ase), c(omposite), e(num), r(ange), d(omain, over another domain), ...
    kind: str
    not_null: bool
    #: A default, an identity or a generated value fills it when a COPY leaves it out.
    has_default: bool
    generated: bool


def binary_oid(column: Column, adapters: AdaptersMap) -> int | None:
    """The type whose binary form a COPY sends for *column*, or None when psycopg has none for it."""
    if column.kind == "e" or column.oid == _BPCHAR_OID:  # the label's (the string's) bytes, as in text
        return _TEXT_OID
    # Ranges go as text: the binary form of some psycopg versions we support (3.3.6) is refused by the server.
    if column.kind in ("c", "d", "r", "m") or not is_builtin(column.oid):
        return None
    try:
        adapters.get_dumper_by_oid(column.oid, pq.Format.BINARY)
    except psycopg.ProgrammingError:
        return None
    return column.oid


_INT2, _INT4 = struct.Struct("!h"), struct.Struct("!i")
_ESCAPED = re.compile(rb"\\([btnvfr\\])")
_ESCAPES = {b"b": b"\b", b"t": b"\t", b"n": b"\n", b"v": b"\v", b"f": b"\f", b"r": b"\r", b"\\": b"\\"}


def parse_binary(data: Any, tx: Any) -> tuple[Any, ...]:
    """A row of binary COPY data → its values, loaded by the transformer *tx*."""
    view = memoryview(data)
    (count,) = _INT2.unpack_from(view, 0)
    pos, fields = 2, list[bytes | None]()
    for _ in range(count):
        (length,) = _INT4.unpack_from(view, pos)
        pos += 4
        if length < 0:
            fields.append(None)
        else:
            fields.append(bytes(view[pos : pos + length]))
            pos += length
    return tuple(tx.load_sequence(fields))


def parse_text(data: Any, tx: Any) -> tuple[Any, ...]:
    """A row of text COPY data (a line, tab-separated, backslash-escaped, NULL as ``\\N``) → its values."""
    fields: list[bytes | None] = [
        None if f == b"\\N" else _ESCAPED.sub(lambda m: _ESCAPES[m[1]], f)
        for f in bytes(data).removesuffix(b"\n").split(b"\t")
    ]
    return tuple(tx.load_sequence(fields))
