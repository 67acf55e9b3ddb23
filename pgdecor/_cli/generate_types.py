"""The Python types `pgdecor generate` writes for PostgreSQL types: an annotation for each type a stub uses
(`Module.annotation`: built-in types by name, arrays as lists, domains as their base type, ranges as psycopg's,
polymorphic types as the module's ``T``), and the classes written for composite types (dataclasses) and enum types
(`Enum`), each under a free class name, with the imports they need. A type with no Python counterpart here raises
`Unsupported`, which says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgdecor._plan.catalog import ENUM_LABELS, POLYMORPHIC_ARRAYS, TEXT_TYPES, TYPES_QUERY, PgType, read_types

from .generate_format import docstring, field_line, literal, member_line
from .generate_names import field_names, member_names

__all__ = ["ATTRIBUTES", "TAKEN", "Module", "Unsupported"]

#: A composite type's attributes: (name, type oid, NOT NULL). Operators and types named with their schema, whatever
#: the search_path (see `_plan.catalog`).
ATTRIBUTES = """
SELECT a.attname::pg_catalog.text, a.atttypid::pg_catalog.int8, a.attnotnull
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_attribute a
  ON a.attrelid OPERATOR(pg_catalog.=) t.typrelid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
WHERE t.oid OPERATOR(pg_catalog.=) %s::pg_catalog.oid
ORDER BY a.attnum
"""

_SCALARS: dict[str, tuple[str, str | None]] = {
    # PostgreSQL base type name → (Python annotation, the import it needs)
    "int2": ("int", None),
    "int4": ("int", None),
    "int8": ("int", None),
    "oid": ("int", None),
    "numeric": ("Decimal", "from decimal import Decimal"),
    "float4": ("float", None),
    "float8": ("float", None),
    "text": ("str", None),
    "varchar": ("str", None),
    "bpchar": ("str", None),
    "name": ("str", None),
    "citext": ("str", None),
    "ltree": ("str", None),
    "bool": ("bool", None),
    "bytea": ("bytes", None),
    "date": ("datetime.date", "import datetime"),
    "time": ("datetime.time", "import datetime"),
    "timetz": ("datetime.time", "import datetime"),
    "timestamp": ("datetime.datetime", "import datetime"),
    "timestamptz": ("datetime.datetime", "import datetime"),
    "interval": ("datetime.timedelta", "import datetime"),
    "uuid": ("UUID", "from uuid import UUID"),
    "json": ("Any", "from typing import Any"),
    "jsonb": ("Any", "from typing import Any"),
    "hstore": ("dict[str, str | None]", None),
    "inet": ("ipaddress.IPv4Address | ipaddress.IPv6Address", "import ipaddress"),
    "cidr": ("ipaddress.IPv4Network | ipaddress.IPv6Network", "import ipaddress"),
}
#: Types psycopg reads as text (see `TEXT_TYPES`), and ranges.
_RANGES = {"int4range": "int", "int8range": "int", "numrange": "Decimal", "daterange": "datetime.date",
           "tsrange": "datetime.datetime", "tstzrange": "datetime.datetime"}  # fmt: skip
_SCALARS.update(dict.fromkeys(sorted(TEXT_TYPES), ("str", None)))
_SCALARS.update({name: (f"Range[{item}]", "from psycopg.types.range import Range") for name, item in _RANGES.items()})
_SCALARS.update(
    {
        name.replace("range", "multirange"): (f"Multirange[{item}]", "from psycopg.types.multirange import Multirange")
        for name, item in _RANGES.items()
    }
)
#: What a range's element annotation needs imported, beyond the range itself.
_RANGE_IMPORTS = {"numrange": "from decimal import Decimal", "daterange": "import datetime",
                  "tsrange": "import datetime", "tstzrange": "import datetime"}  # fmt: skip
_RANGE_IMPORTS.update({name.replace("range", "multirange"): imp for name, imp in _RANGE_IMPORTS.items()})

#: Names the module binds or reads besides its stubs and classes: what its imports bind (all of them, whether this
#: module needs them or not, so that a stub's name does not depend on the other functions), its TypeVar, and the
#: builtins its annotations and bodies use.
TAKEN = frozenset(
    {"annotations", "procedure", "DEFAULT", "Arg", "T", "Annotated", "Any", "TypeVar", "Generic", "Enum",
     "dataclass", "field", "bool", "bytes", "dict", "float", "int", "list", "str", "tuple", "NotImplementedError"}
    | {line.rpartition(" ")[2] for line in [*(i for _, i in _SCALARS.values() if i), *_RANGE_IMPORTS.values()]}
)  # fmt: skip

#: The longest class name: so that every annotation naming a class (``list[Name | None] | None``) fits a line.
_CLASS_NAME = 40


class Unsupported(Exception):  # noqa: N818 - an internal signal, never raised to users
    pass


@dataclass
class Module:
    conn: psycopg.Connection[Any]
    schema: str
    types: dict[int, PgType] = field(default_factory=dict)
    imports: set[str] = field(default_factory=set)
    #: Generated classes by type oid (composites, enums), and their source, in the order they are made.
    classes: dict[int, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    #: The module's names taken so far: imports, stubs, classes.
    names: set[str] = field(default_factory=lambda: set(TAKEN))
    #: Whether a stub is generic (polymorphic), so the module declares ``T``.
    typevar: bool = False
    #: Whether an annotation made since the last dataclass began reads ``T``: that dataclass is then generic.
    generic: bool = False

    def type_info(self, oids: Iterable[int]) -> None:
        wanted = sorted(set(oids) - set(self.types))
        if wanted:
            self.types.update(read_types(self.conn.execute(TYPES_QUERY, {"oids": wanted}).fetchall()))

    def annotation(self, oid: int) -> str:
        """The Python annotation for values of type *oid* (non-NULL), making classes as needed."""
        self.type_info([oid])
        pgtype = self.types[oid]
        if pgtype.base_oid != pgtype.oid:  # a domain, over domains or not: its base type's
            return self.annotation(pgtype.base_oid)
        if pgtype.category == "A" and pgtype.element is not None:
            return f"list[{self.annotation(pgtype.element.oid)} | None]"
        if pgtype.kind == "e":
            return self.enum(pgtype)
        if pgtype.kind == "c":
            return self.composite(pgtype)
        if pgtype.polymorphic:  # a generic stub: T stands for the one type
            self.imports.add("from typing import TypeVar")
            self.typevar = self.generic = True
            return "list[T]" if pgtype.base in POLYMORPHIC_ARRAYS else "T"
        if pgtype.kind == "p" and pgtype.base == "record":
            self.imports.add("from typing import Any")
            return "tuple[Any, ...]"  # its fields, as text: the shape is not declared
        scalar = _SCALARS.get(pgtype.base)
        if scalar is None:
            kind = {"p": "the pseudo-type", "r": "the range type", "m": "the multirange type"}.get(pgtype.kind)
            raise Unsupported(f"{kind or 'the type'} {pgtype.sql}, which has no Python type here")
        for needed in (scalar[1], _RANGE_IMPORTS.get(pgtype.base)):
            if needed:
                self.imports.add(needed)
        return scalar[0]

    def class_name(self, base: str) -> str:
        """A free class name for the type (or row) *base*: CamelCase, and no longer than `_CLASS_NAME`."""
        name = "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", base) if part) or "Type"
        if name[0].isdigit():
            name = "T" + name
        name = name[:_CLASS_NAME]
        candidate, n = name, 2
        while candidate in self.names:
            candidate, n = f"{name}{n}", n + 1
        self.names.add(candidate)
        return candidate

    def enum(self, pgtype: PgType) -> str:
        if pgtype.oid in self.classes:
            return self.classes[pgtype.oid]
        name = self.classes[pgtype.oid] = self.class_name(pgtype.base)
        labels = [label for (label,) in self.conn.execute(ENUM_LABELS, [pgtype.oid]).fetchall()]
        members = [
            member_line(member, literal(label)) for member, label in zip(member_names(labels), labels, strict=True)
        ]
        self.imports.add("from enum import Enum")
        doc = docstring(f"Enum type {pgtype.spelled}.")
        self.sources.append(f"class {name}(str, Enum):\n    {doc}\n\n" + "\n".join(members))
        return name

    def composite(self, pgtype: PgType) -> str:
        if pgtype.oid in self.classes:
            return self.classes[pgtype.oid]
        name = self.classes[pgtype.oid] = self.class_name(pgtype.base)
        fields: list[tuple[str, int, bool]] = [
            (str(attname), int(atttype), bool(notnull))
            for attname, atttype, notnull in self.conn.execute(ATTRIBUTES, [pgtype.oid]).fetchall()
        ]
        self.dataclass(name, f"Composite type {pgtype.spelled}.", fields)
        return name

    def dataclass(self, name: str, doc: str, fields: list[tuple[str, int, bool]]) -> bool:
        """Write the dataclass *name* for the columns *fields* (name, type oid, NOT NULL); return whether it is
        generic (a polymorphic function's row, ``Name[T]``)."""
        outer, self.generic = self.generic, False
        columns = []
        for attname, atttype, notnull in fields:
            annotation = self.annotation(atttype)
            optional = not (notnull or self.types[atttype].not_null)
            columns.append((attname, f"{annotation}{' | None' if optional else ''}"))
        generic, self.generic = self.generic, outer or self.generic
        named = field_names(columns)
        if isinstance(named, str):
            raise Unsupported(named)
        lines = [
            field_line(python, annotation, None if column is None else literal(column))
            for (python, column), (_, annotation) in zip(named, columns, strict=True)
        ]
        if any(column is not None for _, column in named):
            self.imports.add("from dataclasses import field")
        self.imports.add("from dataclasses import dataclass")
        if generic:
            self.imports.add("from typing import Generic")
        body = "\n\n" + "\n".join(lines) if lines else ""  # the docstring alone is a class body
        bases = "(Generic[T])" if generic else ""
        self.sources.append(f"@dataclass\nclass {name}{bases}:\n    {docstring(doc)}{body}")
        return generic
