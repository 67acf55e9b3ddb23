"""Types psycopg does not know out of the box (composites, enums, hstore, extension types and their arrays).

Their values reach pgdecor as text. The first time a result has such a column, the runner asks the catalog
about it once (`DESCRIBE_QUERY`, repeated for types nested inside) and registers loaders in a private
`AdaptersMap` kept per database for the life of the process. Users never call psycopg's ``register_*``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import BaseConnection, abc, pq
from psycopg.adapt import AdaptersMap
from psycopg.types import TypeInfo
from psycopg.types.array import register_array
from psycopg.types.composite import CompositeInfo, register_composite
from psycopg.types.hstore import register_hstore

_TEXT = pq.Format.TEXT

#: What the registry needs of types by oid. Every operator, function and type is named with its schema: a look-alike
#: on the search_path (an ``=`` for an oid and an integer, an ``array_agg`` of text) is never chosen over them.
DESCRIBE_QUERY = """
SELECT t.oid::pg_catalog.int8, t.typname::pg_catalog.text, t.oid::pg_catalog.regtype::pg_catalog.text,
       t.typtype::pg_catalog.text, t.typarray::pg_catalog.int8, t.typelem::pg_catalog.int8,
       coalesce((SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY a.attnum)
                 FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid OPERATOR(pg_catalog.=) t.typrelid AND a.attnum OPERATOR(pg_catalog.>) 0
                   AND NOT a.attisdropped), '{}'),
       coalesce((SELECT pg_catalog.array_agg(a.atttypid::pg_catalog.int8 ORDER BY a.attnum)
                 FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid OPERATOR(pg_catalog.=) t.typrelid AND a.attnum OPERATOR(pg_catalog.>) 0
                   AND NOT a.attisdropped), '{}'),
       t.typbasetype::pg_catalog.int8
FROM pg_catalog.pg_type t
WHERE t.oid OPERATOR(pg_catalog.=) ANY (%s::pg_catalog.oid[])
"""


def is_builtin(oid: int) -> bool:
    """Whether psycopg loads values of this type (or arrays of it) without help."""
    return psycopg.adapters.types.get(oid) is not None


class TypeRegistry:
    """Loaders for one database's non-builtin types."""

    def __init__(self) -> None:
        self.adapters = AdaptersMap(psycopg.adapters)
        self.described: set[int] = set()
        #: Composite type oid → its attributes.
        self.composites: dict[int, CompositeInfo] = {}
        #: Array type oid → element type oid, for the arrays of described types.
        self.elements: dict[int, int] = {}
        #: Oids whose text form a registered loader parses (composites, hstore, arrays); enums and other
        #: extension types stay text.
        self.parsed: set[int] = set()
        #: Domain oid → its base type's oid: a domain's values load as its base type's do.
        self.domains: dict[int, int] = {}
        self._loaders: dict[int, abc.Loader] = {}

    def missing(self, oids: list[int]) -> list[int]:
        """Which of *oids* still need describing."""
        return sorted({o for o in oids if o not in self.described and not is_builtin(o)})

    def add(self, rows: list[tuple[Any, ...]]) -> list[int]:
        """Register the types DESCRIBE_QUERY returned; return the oids they refer to that need describing too."""
        refers: list[int] = []
        for oid, name, regtype, kind, array_oid, elem_oid, field_names, field_types, base_oid in rows:
            self.described.add(oid)
            if kind == "d":
                self.domains[oid] = base_oid
                refers.append(base_oid)
            if elem_oid:
                self.elements[oid] = elem_oid
                refers.append(elem_oid)
            elif kind == "c":
                info = CompositeInfo(
                    name, oid, array_oid, regtype=regtype, field_names=field_names, field_types=field_types
                )
                # A factory that is no class: else psycopg makes a namedtuple of the attribute names, which a
                # keyword among them (an attribute "from") makes fail, and registers a dumper for it.
                register_composite(info, self.adapters, factory=_values, make_object=_as_tuple)
                self.composites[oid] = info
                self.parsed.add(oid)
                refers.extend(field_types)
            elif name == "hstore":
                register_hstore(TypeInfo(name, oid, array_oid, regtype=regtype), self.adapters)
                self.parsed.add(oid)
            elif array_oid:
                # Enums and extension types load as text; registering their array makes arrays load as lists.
                register_array(TypeInfo(name, oid, array_oid, regtype=regtype), self.adapters)
            if array_oid:
                self.described.add(array_oid)
                self.parsed.add(array_oid)
                self.elements[array_oid] = oid
        missing = self.missing(refers)
        if not missing:  # every base type known now: domains load (and their arrays' items) as their bases do
            for domain, base in self.domains.items():
                loader = self.adapters.get_loader(base, _TEXT)
                if loader is not None and self.adapters.get_loader(domain, _TEXT) is None:
                    self.adapters.register_loader(domain, loader)
                    if base in self.parsed or is_builtin(base):
                        self.parsed.add(domain)
        return missing

    def element(self, oid: int) -> int | None:
        """The element type of an array type."""
        if oid in self.elements:
            return self.elements[oid]
        info = psycopg.adapters.types.get(oid)
        return info.oid if info is not None and info.array_oid == oid else None

    def load(self, oid: int, text: str) -> Any:
        """Parse a value psycopg handed over as text because it did not know its type."""
        loader = self._loaders.get(oid)
        if loader is None:
            loader_cls = self.adapters.get_loader(oid, _TEXT)
            assert loader_cls is not None
            loader = self._loaders[oid] = loader_cls(oid, self.adapters)
        return loader.load(text.encode())


def _as_tuple(values: Any, _info: CompositeInfo) -> tuple[Any, ...]:
    return tuple(values)


def _values(*values: Any) -> tuple[Any, ...]:
    return values


ServerKey = tuple[str, str, str, str]
_registries: dict[ServerKey, TypeRegistry] = {}
_keys: dict[ServerKey, ServerKey] = {}


def server_key(conn: BaseConnection[Any]) -> ServerKey:
    """Identifies the database *conn* talks to, and its connection options (which may set the search_path):
    catalog facts are cached per key."""
    info = conn.info
    key = (info.host, str(info.port), info.dbname, info.options)
    return _keys.setdefault(key, key)  # one object per server: the routes of each call find it by identity


def registry_for(key: ServerKey) -> TypeRegistry:
    found = _registries.get(key)
    if found is None:
        found = _registries[key] = TypeRegistry()
    return found
