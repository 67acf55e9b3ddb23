"""What the database declares: functions and procedures from ``pg_proc``, types from ``pg_type``.

`@procedure` stubs are resolved against the catalog at their first call on each server, once per process (which
function fits a stub is `_plan.matching`'s). Reading is I/O (the queries below, run by `_sources.probe`); here are
the queries and what their rows are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# Every operator, function and type below is named with its schema, as pg_dump names them: a role that can create
# objects in a schema on the search_path (public, before PostgreSQL 15) would otherwise have its look-alikes chosen
# wherever they match the arguments more closely than pg_catalog's own (an oid compared with an integer, an
# array_agg of text), or everywhere if the path lists pg_catalog after that schema.
_FUNCTIONS = """
SELECT n.nspname::pg_catalog.text, p.proname::pg_catalog.text,
       pg_catalog.concat({name}, '(', pg_catalog.pg_get_function_identity_arguments(p.oid), ')'),
       p.prokind::pg_catalog.text, p.proretset,
       p.prorettype::pg_catalog.int8, rt.typtype::pg_catalog.text,
       coalesce(p.proallargtypes, p.proargtypes::pg_catalog.oid[])::pg_catalog.int8[],
       p.proargmodes::pg_catalog.text[], p.proargnames,
       p.pronargdefaults{more}
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
JOIN pg_catalog.pg_type rt ON rt.oid OPERATOR(pg_catalog.=) p.prorettype
WHERE {where}
"""

FUNCTIONS_QUERY = _FUNCTIONS.format(
    name="p.oid::pg_catalog.regproc",
    more="",
    where="""p.proname OPERATOR(pg_catalog.=) %(name)s
  AND CASE WHEN %(schema)s::pg_catalog.text IS NULL THEN pg_catalog.pg_function_is_visible(p.oid)
           ELSE n.nspname OPERATOR(pg_catalog.=) %(schema)s END
ORDER BY p.oid""",
)

#: The functions and procedures of a schema, as FUNCTIONS_QUERY reads them, with their comments, the extension each
#: belongs to (if any), and its language and source: what `pgdecor generate` writes stubs for.
SCHEMA_FUNCTIONS = _FUNCTIONS.format(
    name="p.proname",
    more=""",
       pg_catalog.obj_description(p.oid, 'pg_proc'),
       (SELECT e.extname::pg_catalog.text FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
        WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
          AND d.objid OPERATOR(pg_catalog.=) p.oid
          AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
          AND d.deptype OPERATOR(pg_catalog.=) 'e'),
       (SELECT l.lanname::pg_catalog.text FROM pg_catalog.pg_language l
        WHERE l.oid OPERATOR(pg_catalog.=) p.prolang),
       p.prosrc""",
    where="""n.nspname OPERATOR(pg_catalog.=) %s
  AND p.prokind OPERATOR(pg_catalog.=) ANY ('{f,p}'::pg_catalog."char"[])
ORDER BY p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)""",
)

#: Types by oid, domains resolved to their base type (through domains over domains); arrays also bring their element
#: type, and domains their base type. A domain is NOT NULL when one of the domains it is made of is.
TYPES_QUERY = """
WITH RECURSIVE chain (top, cur, not_null) AS (
    SELECT t.oid, t.oid, t.typtype OPERATOR(pg_catalog.=) 'd' AND t.typnotnull
    FROM pg_catalog.pg_type t
    WHERE t.oid OPERATOR(pg_catalog.=) ANY (%(oids)s::pg_catalog.oid[])
       OR t.oid OPERATOR(pg_catalog.=) ANY (SELECT e.typelem FROM pg_catalog.pg_type e
                                            WHERE e.oid OPERATOR(pg_catalog.=) ANY (%(oids)s::pg_catalog.oid[]))
  UNION ALL
    SELECT c.top, d.typbasetype, b.typtype OPERATOR(pg_catalog.=) 'd' AND b.typnotnull
    FROM chain c
    JOIN pg_catalog.pg_type d ON d.oid OPERATOR(pg_catalog.=) c.cur AND d.typtype OPERATOR(pg_catalog.=) 'd'
    JOIN pg_catalog.pg_type b ON b.oid OPERATOR(pg_catalog.=) d.typbasetype
), based (top, base, not_null) AS (
    SELECT c.top, c.cur, (SELECT pg_catalog.bool_or(n.not_null) FROM chain n WHERE n.top OPERATOR(pg_catalog.=) c.top)
    FROM chain c
    JOIN pg_catalog.pg_type b ON b.oid OPERATOR(pg_catalog.=) c.cur AND b.typtype OPERATOR(pg_catalog.<>) 'd'
)
SELECT t.oid::pg_catalog.int8, pg_catalog.format_type(t.oid, NULL),
       b.typtype::pg_catalog.text, b.typcategory::pg_catalog.text, b.typname::pg_catalog.text,
       b.typelem::pg_catalog.int8, t.typname::pg_catalog.text,
       pg_catalog.concat(pg_catalog.quote_ident(tn.nspname), '.', pg_catalog.quote_ident(t.typname)),
       b.oid::pg_catalog.int8, x.not_null
FROM (SELECT top, base, not_null FROM based UNION SELECT base, base, false FROM based) x
JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) x.top
JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) t.typnamespace
JOIN pg_catalog.pg_type b ON b.oid OPERATOR(pg_catalog.=) x.base
"""

#: ``format_type`` without a typmod spells bpchar "character" and bit "bit", which as types mean length 1: ``sql``
#: names them as the types of any length they are.
_LENGTH_ONE = {
    "pg_catalog.bpchar": "bpchar",
    "pg_catalog._bpchar": "bpchar[]",
    "pg_catalog.bit": "varbit",
    "pg_catalog._bit": "varbit[]",
}

#: How ``format_type`` spells PostgreSQL's types that SQL names with keywords: the grammar turns these into
#: pg_catalog's types, so that, unlike other names, no search_path can make them name another type.
SQL_TYPE_KEYWORDS = frozenset(
    {"smallint", "integer", "bigint", "real", "double precision", "numeric", "boolean", "character varying",
     "bit varying", "interval", "time without time zone", "time with time zone", "timestamp without time zone",
     "timestamp with time zone"}
)  # fmt: skip


#: The labels of an enum type, in their order.
ENUM_LABELS = """
SELECT enumlabel::pg_catalog.text FROM pg_catalog.pg_enum
WHERE enumtypid OPERATOR(pg_catalog.=) %s::pg_catalog.oid ORDER BY enumsortorder
"""


#: Polymorphic pseudo-types a stub can pass: an element (a `TypeVar`, or any one type), or an array of one.
POLYMORPHIC_ELEMENTS = frozenset({"anyelement", "anynonarray", "anycompatible", "anycompatiblenonarray"})
POLYMORPHIC_ARRAYS = frozenset({"anyarray", "anycompatiblearray"})
POLYMORPHIC = POLYMORPHIC_ELEMENTS | POLYMORPHIC_ARRAYS


#: Types whose values psycopg reads as text, and pgdecor sends back as text cast to their own type: a `str` fits
#: them (as it fits the string-like categories), and `generate` annotates them `str`. ``"char"``, PostgreSQL's
#: one-byte internal type, is of the internal category, not the string one.
TEXT_TYPES = frozenset(
    {"char", "xml", "tsvector", "tsquery", "money", "bit", "varbit", "macaddr", "macaddr8", "point", "line", "lseg",
     "box", "path", "polygon", "circle", "regclass", "regproc", "regprocedure", "regtype", "regnamespace", "regrole",
     "regoper", "regoperator", "regconfig", "regdictionary", "regcollation"}
)  # fmt: skip


@dataclass(frozen=True)
class PgType:
    oid: int
    #: SQL spelling of the type, as ``format_type`` gives it (quoted and schema-qualified where needed).
    sql: str
    #: ``typtype`` of the base type: b(ase), c(omposite), e(num), r(ange), p(seudo), m(ultirange).
    kind: str
    #: ``typcategory`` of the base type: N(umeric), S(tring), A(rray), B(oolean), D(ate/time), U(ser) ...
    category: str
    #: ``typname`` of the base type (``int4``, ``jsonb``, ``hstore``): domains are seen through.
    base: str
    element: PgType | None = None
    #: The type's own ``typname`` (a domain's, not its base type's).
    name: str = ""
    #: ``schema.typname``, quoted: the same whatever the search_path.
    qualified: str = ""
    #: Oid of the base type (the type's own, except for a domain).
    base_oid: int = 0
    #: A domain declared NOT NULL.
    not_null: bool = False

    @property
    def polymorphic(self) -> bool:
        """A polymorphic pseudo-type a stub can pass (`POLYMORPHIC`): the call's values decide the type."""
        return self.kind == "p" and self.base in POLYMORPHIC

    @property
    def cast(self) -> str:
        """How composed SQL names the type in a cast: in words no search_path gives another meaning. SQL's keywords
        for PostgreSQL's types (``integer``, ``timestamp with time zone``) as they are; an array as its element's
        name and ``[]``; any other type with its schema (``pg_catalog.text``, ``app.mood``)."""
        if self.category == "A" and self.element is not None and self.base_oid == self.oid:
            return f"{self.element.cast}[]"
        if self.sql in SQL_TYPE_KEYWORDS and self.qualified.startswith("pg_catalog."):
            return self.sql
        return self.qualified

    @property
    def spelled(self) -> str:
        """How generated code names the type: ``sql`` for PostgreSQL's own types, else ``qualified``."""
        return self.sql if self.qualified.startswith("pg_catalog.") else self.qualified


@dataclass(frozen=True)
class Arg:
    name: str | None
    type: PgType
    #: i(n), o(ut), b (inout), v(ariadic), t(able column)
    mode: str
    has_default: bool

    @property
    def is_input(self) -> bool:
        return self.mode in ("i", "b", "v")


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    #: ``schema.name(argtypes)``, for messages.
    signature: str
    is_procedure: bool
    returns_set: bool
    #: Returns one composite value (not SETOF, no OUT parameters): NULL means "no row".
    returns_composite: bool
    args: tuple[Arg, ...]
    #: Oid of the declared return type.
    rettype: int = 0

    @property
    def returns_value(self) -> bool:
        """Returns one value (not a set, not a row of OUT parameters), which SELECT f(...) gives as one column."""
        return not self.is_procedure and not self.returns_set and not self.returns_composite and not self.outputs

    @property
    def inputs(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.is_input)

    @property
    def outputs(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.mode in ("o", "b", "t"))


def type_oids(rows: list[tuple[Any, ...]]) -> list[int]:
    """Every argument type oid of the functions *rows* (from FUNCTIONS_QUERY) describe."""
    return sorted({oid for row in rows for oid in row[7] or ()})


def read_types(rows: list[tuple[Any, ...]]) -> dict[int, PgType]:
    """PgTypes from TYPES_QUERY rows, with array elements linked."""
    plain = {
        oid: PgType(oid, _LENGTH_ONE.get(qualified, sql), kind, cat, base, None, name, qualified, base_oid, not_null)
        for oid, sql, kind, cat, base, _, name, qualified, base_oid, not_null in rows
    }
    elements = {row[0]: row[5] for row in rows}
    return {
        oid: dataclasses.replace(t, element=plain.get(elements[oid])) if t.category == "A" else t
        for oid, t in plain.items()
    }


def read_functions(rows: list[tuple[Any, ...]], types: dict[int, PgType]) -> list[Function]:
    """Functions from FUNCTIONS_QUERY rows."""
    functions = []
    for schema, name, signature, kind, retset, rettype, rettyptype, argtypes, modes, names, ndefaults in rows:
        arg_modes = modes or ["i"] * len(argtypes)
        arg_names = names or [""] * len(argtypes)
        n_inputs = sum(m in ("i", "b", "v") for m in arg_modes)
        first_default = n_inputs - ndefaults
        args, seen_inputs = [], 0
        for argtype, mode, arg_name in zip(argtypes, arg_modes, arg_names, strict=True):
            has_default = False
            if mode in ("i", "b", "v"):
                has_default = seen_inputs >= first_default
                seen_inputs += 1
            args.append(Arg(arg_name or None, types[argtype], mode, has_default))
        returns_composite = rettyptype == "c" and not retset and not any(m in ("o", "b", "t") for m in arg_modes)
        functions.append(
            Function(schema, name, signature, kind == "p", retset, returns_composite, tuple(args), rettype)
        )
    return functions
