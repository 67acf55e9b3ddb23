"""The one place SQL is composed: the statement a stub sends and how its arguments become parameters.

A `Call` turns the tuple of arguments the generated caller packs into ``(sql, params)``. `QueryCall` has one
statement, fixed at decoration. `ProcedureCall` resolves the stub against the catalog of each server it meets
(once per process), picks the function or procedure and overload, and composes ``SELECT``/``CALL`` with named or
positional arguments, each cast to the type the function declares.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

from psycopg import sql

from pgdecor._annotations import bare, describe, is_namedtuple, list_type, split_optional
from pgdecor._errors import AmbiguousFunctionError, ArgumentError, UndefinedFunctionError
from pgdecor._rows.convert import Convert, enum_param, hstore_param, is_enum, list_of
from pgdecor._rows.json_dump import NotJsonError, is_json_param, json_document, json_documents, json_record
from pgdecor._rows.registry import ServerKey

from .catalog import (
    FUNCTIONS_QUERY,
    TYPES_QUERY,
    Binding,
    Function,
    Match,
    PgType,
    StubParam,
    match,
    read_functions,
    read_types,
    type_oids,
)
from .results import ResultPlan, Shape
from .signature import DEFAULT, placeholder_format

Pick = Callable[[tuple[Any, ...]], Any]


@dataclass(frozen=True)
class Statement:
    """What one call sends."""

    sql: str
    #: How to take each parameter from the argument tuple.
    picks: tuple[Pick, ...]
    #: True when the parameters are the arguments as they are (no reordering or conversion).
    direct: bool
    #: True when the statement returns one value that becomes the whole return annotation (a function
    #: returning json, an array, a composite value), rather than rows mapped onto it.
    value: bool = False
    #: The argument index of each parameter, when every parameter is an argument as it is.
    indices: tuple[int, ...] | None = None
    #: The arguments → the parameters, made from the above.
    params: Callable[[tuple[Any, ...]], tuple[Any, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _params_function(self.picks, self.direct, self.indices))

    def numbered(self) -> tuple[str, list[str], list[bool]]:
        """The SQL with PostgreSQL's ``$n`` placeholders, as the server prepares it; each placeholder's format
        (``b``, ``s`` or ``t``); and whether the SQL casts it (``%b::integer``)."""
        numbers = itertools.count(1)
        found = [m for m in _PLACEHOLDER.finditer(self.sql) if m[1] != "%"]
        numbered = _PLACEHOLDER.sub(lambda m: "%" if m[1] == "%" else f"${next(numbers)}", self.sql)
        return numbered, [m[1] for m in found], [self.sql.startswith("::", m.end()) for m in found]


#: The placeholders of the SQL pgdecor composes (psycopg's, ``%%`` a literal ``%``).
_PLACEHOLDER = re.compile(r"%(%|[bst])")


def _params_function(
    picks: tuple[Pick, ...], direct: bool, indices: tuple[int, ...] | None
) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    if direct:
        return lambda args: args
    if indices is not None and len(indices) > 1:
        return itemgetter(*indices)
    if indices is not None and indices:
        (index,) = indices
        return lambda args: (args[index],)
    return lambda args: tuple([pick(args) for pick in picks])


def _pick(stub: str, source: int | str, adapter: Callable[[Any], Any] | None, name: str) -> Pick:
    """How to take one parameter from the arguments: by position, or as an attribute of ``self`` (args[0]); then
    converted by *adapter*, which raises `ArgumentError` naming the parameter for a value it cannot send."""
    get: Pick
    if isinstance(source, int):
        get = itemgetter(source)
    else:
        attribute = attrgetter(source)

        def get(args: tuple[Any, ...]) -> Any:
            try:
                return attribute(args[0])
            except AttributeError:
                msg = (
                    f"{stub}(): the SQL needs {source!r}, which is not a parameter of the stub, so it is taken "
                    f"from self.{source}, but {type(args[0]).__qualname__} has no such attribute"
                )
                raise ArgumentError(msg) from None

    if adapter is None:
        return get

    def converted(args: tuple[Any, ...]) -> Any:
        value = get(args)
        try:
            return adapter(value)
        except NotJsonError as err:
            msg = f"{stub}(): argument {name!r} {err}; nothing was sent to the server"
        raise ArgumentError(msg)

    return converted


@dataclass(frozen=True)
class Slot:
    """A placeholder of a `@query`'s SQL: where its value comes from (the index of an argument, or the name of an
    attribute of ``self``), its annotation, the parameter's name, and psycopg's format for it."""

    source: int | str
    annotation: Any
    name: str
    format: str


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


class QueryCall:
    """The fixed statement of a `@query` stub."""

    def __init__(self, stub: str, pieces: list[str | Slot], nargs: int) -> None:
        parts: list[str] = []
        picks: list[tuple[int | str, Convert | None, str]] = []
        placeholders: list[tuple[Any, int | None]] = []
        for i, piece in enumerate(pieces):
            if isinstance(piece, str):
                parts.append(piece)
                continue
            following = pieces[i + 1] if i + 1 < len(pieces) else ""
            template, adapter, oid = query_argument(piece.annotation, following if isinstance(following, str) else "")
            parts.append(template.replace("{value}", f"%{piece.format}"))
            count = template.count("{value}")
            picks += [(piece.source, adapter, piece.name)] * count
            placeholders += [(piece.annotation, oid)] * count
        #: Each placeholder's annotation, and the type oid pgdecor sends it as (None: psycopg's dumper for the
        #: value decides): what `check` prepares the statement with.
        self.placeholders = tuple(placeholders)
        plain = [s for s, a, _ in picks if isinstance(s, int) and a is None]
        indices = tuple(plain) if len(plain) == len(picks) else None
        direct = indices == tuple(range(nargs))
        self.statement = Statement(
            "".join(parts), tuple(_pick(stub, s, a, n) for s, a, n in picks), direct, indices=indices
        )

    def cached(self, key: ServerKey, args: tuple[Any, ...]) -> Statement:  # noqa: ARG002 - same as ProcedureCall
        return self.statement


class ProcedureCall:
    """A `@procedure` stub's statements, one per server (and per set of arguments left to their default)."""

    def __init__(
        self,
        stub: str,
        name: tuple[str, ...],
        params: list[StubParam],
        result: ResultPlan,
        *,
        has_self: bool,
        offset: int,
        defaults: tuple[int, ...],
    ) -> None:
        self.stub = stub
        self.name = name
        self.params = params
        self.result = result
        self.has_self = has_self
        #: Position of the first SQL parameter in the argument tuple (1 when it starts with self or cls).
        self.offset = offset
        #: Indexes (in the argument tuple) of parameters whose default is DEFAULT.
        self.defaults = defaults
        self._statements: dict[tuple[ServerKey, tuple[int, ...]], Statement] = {}
        self._matches: dict[ServerKey, Match] = {}

    def _omitted(self, args: tuple[Any, ...]) -> tuple[int, ...]:
        return tuple(i for i in self.defaults if args[i] is DEFAULT)

    def cached(self, key: ServerKey, args: tuple[Any, ...]) -> Statement | None:
        return self._statements.get((key, self._omitted(args) if self.defaults else ()))

    def needs_catalog(self, key: ServerKey) -> bool:
        return key not in self._matches

    def catalog_queries(self) -> tuple[str, dict[str, Any]]:
        schema, name = (None, self.name[0]) if len(self.name) == 1 else self.name
        return FUNCTIONS_QUERY, {"name": name, "schema": schema}

    def types_query(self, function_rows: list[tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
        return TYPES_QUERY, {"oids": type_oids(function_rows)}

    def resolve(self, key: ServerKey, function_rows: list[tuple[Any, ...]], type_rows: list[tuple[Any, ...]]) -> None:
        """Pick the function this stub calls on the server *key*, from the catalog rows about its name."""
        functions = read_functions(function_rows, read_types(type_rows))
        self._matches[key] = self._choose(functions)

    def match(self, key: ServerKey) -> Match:
        """The function (and how the stub's parameters bind to its arguments) resolved on the server *key*."""
        return self._matches[key]

    def compose(self, chosen: Match, omitted: set[int] | None = None) -> Statement:
        """The statement calling the function *chosen*, leaving the *omitted* arguments to their defaults."""
        return self._build(chosen, omitted or set())

    def statement(self, key: ServerKey, args: tuple[Any, ...]) -> Statement:
        omitted = self._omitted(args) if self.defaults else ()
        found = self._build(self._matches[key], {i - self.offset for i in omitted})
        self._statements[(key, omitted)] = found
        return found

    def _choose(self, functions: list[Function]) -> Match:
        shown = ".".join(self.name)
        wanted = ", ".join(f"{'VARIADIC ' if p.variadic else ''}{p.name} {describe(p.annotation)}" for p in self.params)
        if not functions:
            raise UndefinedFunctionError.mismatch(
                self.stub,
                f"the database has no function or procedure {shown}",
                f"create it, fix the name with @procedure('schema.name'), or check the search_path "
                f"(the stub passes: {wanted or 'nothing'})",
            )
        fits: list[Match] = []
        misfits: list[str] = []
        for f in functions:
            found = match(f, self.params, has_self=self.has_self)
            if isinstance(found, Match):
                fits.append(found)
            else:
                misfits.append(f"{f.signature}: {found}")
        if len(fits) == 1:
            return fits[0]
        if not fits:
            raise UndefinedFunctionError.mismatch(
                self.stub,
                f"no {shown} fits the stub ({wanted or 'no arguments'})",
                "candidates:\n  " + "\n  ".join(misfits),
            )
        candidates = "\n  ".join(m.function.signature for m in fits)
        raise AmbiguousFunctionError.mismatch(
            self.stub,
            f"several {shown} fit the stub ({wanted})",
            f'annotate a parameter with the type to use, e.g. `Annotated[int, "int8"]`. Candidates:\n  {candidates}',
        )

    def _build(self, chosen: Match, omitted: set[int]) -> Statement:
        function = chosen.function
        parts: list[sql.Composable] = []
        picks: list[Pick] = []
        indices: list[int | None] = []
        skipped_positional = False
        by_arg = {id(b.arg): b for b in chosen.bindings}
        for arg in function.args:
            binding = by_arg.get(id(arg))
            if binding is None or (binding.param is not None and binding.param in omitted):
                if arg.mode == "o" and function.is_procedure:
                    value: sql.Composable = sql.SQL("NULL")
                elif binding is not None or (arg.is_input and not chosen.named):
                    skipped_positional = True
                    continue
                else:
                    continue
            else:
                if skipped_positional and not chosen.named:
                    p = self.params[min(omitted)]
                    msg = (
                        f"{self.stub}(): {p.name!r} cannot be left to the server's default here: "
                        f"{function.signature} has unnamed parameters, so only trailing ones can be omitted"
                    )
                    raise ArgumentError(msg)
                value = self._argument(binding, picks, indices)
            if chosen.named:
                prefix = "VARIADIC " if arg.mode == "v" else ""
                value = sql.SQL(prefix + "{} => {}").format(sql.Identifier(arg.name or ""), value)
            parts.append(value)
        call = sql.SQL("{}({})").format(sql.Identifier(*self.name), sql.SQL(", ").join(parts))
        statement: sql.Composable
        one_value = function.returns_value and self.result.shape in (Shape.ONE, Shape.OPTIONAL, Shape.MANY)
        if function.is_procedure:
            statement = sql.SQL("CALL {}").format(call)
        elif self.result.shape is Shape.NONE or self.result.scalar or one_value:
            statement = sql.SQL("SELECT {}").format(call)
        elif function.returns_composite:
            # A function returning one composite returns NULL for "nothing": make that no row.
            statement = sql.SQL("SELECT * FROM {} AS r WHERE NOT (r IS NULL)").format(call)
        else:
            statement = sql.SQL("SELECT * FROM {}").format(call)
        plain = tuple(i for i in indices if i is not None)
        exact = plain if len(plain) == len(indices) else None
        direct = exact == tuple(range(len(self.params) + self.offset))
        return Statement(statement.as_string(), tuple(picks), direct, value=one_value, indices=exact)

    def _argument(self, binding: Binding, picks: list[Pick], indices: list[int | None]) -> sql.Composable:
        """The SQL for one argument, appending how to pick its value(s) from the arguments."""
        pgtype = binding.arg.type
        source: int | str
        if binding.param is None:
            source = name = binding.arg.name or ""
            annotation: Any = Any
        else:
            source = binding.param + self.offset
            param = self.params[binding.param]
            name = param.name
            annotation = list_type(param.annotation) if param.variadic else param.annotation
        template, adapter = argument_sql(annotation, pgtype)
        variadic_list = binding.param is not None and self.params[binding.param].variadic
        adapt = _then(list, adapter) if variadic_list else adapter
        picks.extend([_pick(self.stub, source, adapt, name)] * template.count("{value}"))
        indices.extend([source if isinstance(source, int) and adapt is None else None] * template.count("{value}"))
        return sql.SQL(template.replace("{value}", "{}")).format(
            *[sql.Placeholder(format=placeholder_format(annotation))] * template.count("{value}"),
            type=sql.SQL(pgtype.cast),  # spelled and quoted by the server, in words no search_path changes
            element=sql.SQL(pgtype.element.cast if pgtype.element else ""),
        )


def _then(first: Callable[[Any], Any], second: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    return first if second is None else (lambda v: second(first(v)))


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
