"""The SQL in place of one argument, and the conversion its value goes through first: by the type the function
declares (`argument_sql`, for `@procedure`), or by the annotation and the cast written after the placeholder
(`query_argument`, for `@query`). A composite value travels as the JSON object of its fields, made into the
composite by the server.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from typing import Any

from pgdecor._annotations import bare, is_namedtuple, split_optional
from pgdecor._rows.convert import Convert, enum_param, hstore_param, is_enum, list_of
from pgdecor._rows.json_dump import is_json_param, json_document, json_documents, json_record

from .catalog import PgType

__all__ = ["COMPOSITE", "COMPOSITE_ARRAY", "JSONB_ARRAY_OID", "JSONB_OID", "UNTYPED", "argument_sql", "query_argument"]

#: A composite value from the JSON object of its fields, by name (``{type}``: the composite); NULL for NULL.
COMPOSITE = (
    "CASE WHEN {value}::pg_catalog.jsonb IS NULL THEN NULL "
    "ELSE pg_catalog.jsonb_populate_record(NULL::{type}, {value}::pg_catalog.jsonb) END"
)

#: An array of composites (``{element}``) from a JSON array of their objects, in order, a JSON null being a NULL
#: element (which ``jsonb_populate_record`` refuses); NULL for NULL.
COMPOSITE_ARRAY = (
    "CASE WHEN {value}::pg_catalog.jsonb IS NULL THEN NULL "
    "ELSE ARRAY(SELECT CASE WHEN pg_catalog.jsonb_typeof(e.value) OPERATOR(pg_catalog.=) 'null' THEN NULL "
    "ELSE pg_catalog.jsonb_populate_record(NULL::{element}, e.value) END "
    "FROM pg_catalog.jsonb_array_elements({value}::pg_catalog.jsonb) WITH ORDINALITY AS e "
    "ORDER BY e.ordinality) END"
)


def argument_sql(annotation: Any, pgtype: PgType) -> tuple[str, Callable[[Any], Any] | None]:
    """SQL template for one argument of declared type *pgtype* (``{value}`` marks each placeholder) and the
    conversion applied to the Python value first. The functions it calls are named with their schema: a look-alike
    taking the composite type itself, in a schema on the search_path, would otherwise be chosen over pg_catalog's."""
    if pgtype.base in ("json", "jsonb"):
        return "{value}::{type}", json_document(annotation)
    if pgtype.kind == "c":
        return COMPOSITE, json_record(annotation)
    element = pgtype.element
    if element is not None and element.kind == "c":
        return COMPOSITE_ARRAY, json_record(annotation)
    if element is not None and element.base in ("json", "jsonb"):
        return "{value}::{type}", json_documents(annotation)
    if pgtype.base == "hstore":
        return "{value}::{type}", hstore_param
    if pgtype.polymorphic:
        return "{value}", None  # no cast: the value's own type decides what the polymorphic function gets
    tp, _ = bare(annotation)
    if is_enum(tp):
        return "{value}::{type}", enum_param
    if element is not None and any(is_enum(a) for a in getattr(tp, "__args__", ())):
        return "{value}::{type}", list_of(enum_param)
    return "{value}::{type}", None


#: The type oids pgdecor sends values as, where it decides (`QueryCall.placeholders`).
JSONB_OID, JSONB_ARRAY_OID, UNTYPED = 3802, 3807, 0

_IDENTIFIER = r'(?:"(?:[^"]|"")+"|[^\W\d][\w$]*)'

#: A cast written right after a placeholder: ``::name``, ``::schema.name``, ``::"Name"``, each maybe ``[]``.
_CAST = re.compile(rf"\s*::\s*(?P<type>{_IDENTIFIER}(?:\s*\.\s*{_IDENTIFIER})?)(?P<array>(?:\s*\[\s*\d*\s*\])+)?")

_JSON_TYPES = frozenset({"json", "jsonb", "pg_catalog.json", "pg_catalog.jsonb"})
_JSON_ARRAYS = frozenset(f"{name}[]" for name in _JSON_TYPES)


def query_argument(annotation: Any, following: str) -> tuple[str, Convert | None, int | None]:
    """How a `@query` placeholder is sent, from its annotation and the cast written right after it in the SQL
    (*following*): the SQL in its place (``{value}`` marking each psycopg placeholder), the conversion applied to
    the value first, and the type oid it is sent as (None where psycopg's dumper for the value decides)."""
    cast = _CAST.match(following)
    json_cast = cast is not None and cast["type"].replace(" ", "").lower() in _JSON_TYPES
    if is_enum(annotation):
        return "{value}", enum_param, UNTYPED
    if (cast is not None and cast["array"] and json_cast) or _declared(annotation) in _JSON_ARRAYS:
        return "{value}", json_documents(annotation), JSONB_ARRAY_OID
    if cast is not None and not json_cast:
        if cast["array"] and _is_record_list(annotation):
            return f"({COMPOSITE_ARRAY.replace('{element}', cast['type'])})", json_record(annotation), JSONB_OID
        if not cast["array"] and _is_record(annotation):
            return f"({COMPOSITE.replace('{type}', cast['type'])})", json_record(annotation), JSONB_OID
    if is_json_param(annotation):
        return "{value}", json_document(annotation), JSONB_OID
    return "{value}", None, None


def _declared(annotation: Any) -> str | None:
    """The type an ``Annotated[T, "type"]`` names, as `compatible` reads it."""
    tp, _ = split_optional(annotation)
    hints = [h for h in getattr(tp, "__metadata__", ()) if isinstance(h, str)]
    return hints[0].replace(" ", "").lower() if hints else None


def _is_record(annotation: Any) -> bool:
    tp, _ = bare(annotation)
    return isinstance(tp, type) and (dataclasses.is_dataclass(tp) or is_namedtuple(tp))


def _is_record_list(annotation: Any) -> bool:
    tp, _ = bare(annotation)
    args = typing.get_args(tp) if typing.get_origin(tp) is list else ()
    return bool(args) and _is_record(args[0])
