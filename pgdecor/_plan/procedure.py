"""`@procedure` stubs: the function a stub names, and the statements calling it (`ProcedureCall`).

A call resolves the stub against the catalog of each server it meets (once per process), picks the function or
procedure and the overload that fit it (`_plan.matching`), and composes ``SELECT`` or ``CALL`` with named or
positional arguments, each cast to the type the function declares (`_plan.argument_sql`): one statement per server
and per set of arguments left to their defaults.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from psycopg import sql

from pgdecor._annotations import describe, list_type
from pgdecor._errors import AmbiguousFunctionError, ArgumentError, SignatureError, UndefinedFunctionError
from pgdecor._rows.registry import ServerKey

from .argument_sql import argument_sql
from .catalog import FUNCTIONS_QUERY, TYPES_QUERY, Function, read_functions, read_types, type_oids
from .matching import Binding, Match, StubParam, match
from .params import DEFAULT, Param, arg_name, placeholder_format
from .results import ResultPlan, Shape
from .statement import Pick, Statement, pick

__all__ = ["ProcedureCall", "function_name", "procedure_call"]

#: One part of a function's name: in double quotes (``""`` a quote), or up to the next ``.``.
_NAME_PART = re.compile(r'"((?:[^"]|"")*)"|([^".][^.]*|)')


def function_name(stub: str, text: str) -> tuple[str, ...]:
    """The parts of the function's name *text* (``name`` or ``schema.name``), as SQL quotes them: a part beginning
    with a double quote ends at the next lone one (``app."welcome.html"``), any other at the next ``.``. Raises
    `SignatureError` for anything else."""
    parts = _split_name(text)
    if parts is None or not 1 <= len(parts) <= 2 or not all(parts):
        msg = (
            f"{stub}: {text!r} is not a function name; write 'name' or 'schema.name', with a part that has a "
            f"'.' in double quotes (as SQL quotes it: 'app.\"welcome.html\"')"
        )
        raise SignatureError(msg)
    return parts


def _split_name(text: str) -> tuple[str, ...] | None:
    """The parts of *text*, or None if it cannot be read so (an unclosed quote)."""
    parts: list[str] = []
    pos = 0
    while True:
        m = _NAME_PART.match(text, pos)
        assert m is not None  # the second alternative matches the empty string
        quoted, plain = m.groups()
        parts.append(quoted.replace('""', '"') if quoted is not None else plain)
        pos = m.end()
        if pos == len(text):
            return tuple(parts)
        if text[pos] != ".":
            return None
        pos += 1


def procedure_call(
    stub: str,
    name: tuple[str, ...],
    sig: inspect.Signature,
    params: tuple[Param, ...],
    result: ResultPlan,
    *,
    receiver: str | None,
) -> ProcedureCall:
    """The call of the function *name* by a stub of signature *sig* and parameters *params* (*receiver*: the
    first is ``self`` or ``cls``)."""
    offset = 1 if receiver else 0
    return ProcedureCall(
        stub,
        name,
        _stub_params(stub, params[offset:]),
        result,
        has_self=receiver == "self",
        offset=offset,
        defaults=tuple(i for i, p in enumerate(sig.parameters.values()) if p.default is DEFAULT),
    )


def _stub_params(stub: str, params: tuple[Param, ...]) -> list[StubParam]:
    """The parameters as resolution sees them, each named after the argument it passes: its own name, or the one
    its `Arg` gives."""
    names: dict[str, str] = {}
    for p in params:
        name = arg_name(p.annotation) or p.name
        if name in names:
            msg = (
                f"{stub}: parameters {names[name]!r} and {p.name!r} both pass the argument {name!r}; give each "
                f'parameter the argument it passes (`Annotated[T, Arg("name")]`)'
            )
            raise SignatureError(msg)
        names[name] = p.name
    return [StubParam(name, p.annotation, p.variadic) for name, p in zip(names, params, strict=True)]


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
        picks.extend([pick(self.stub, source, adapt, name)] * template.count("{value}"))
        indices.extend([source if isinstance(source, int) and adapt is None else None] * template.count("{value}"))
        return sql.SQL(template.replace("{value}", "{}")).format(
            *[sql.Placeholder(format=placeholder_format(annotation))] * template.count("{value}"),
            type=sql.SQL(pgtype.cast),  # spelled and quoted by the server, in words no search_path changes
            element=sql.SQL(pgtype.element.cast if pgtype.element else ""),
        )


def _then(first: Callable[[Any], Any], second: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    return first if second is None else (lambda v: second(first(v)))
