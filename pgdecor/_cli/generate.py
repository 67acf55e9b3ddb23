"""`pgdecor generate`: a module of typed stubs for the functions and procedures of a schema.

The output is deterministic (the same database gives the same bytes): a dataclass per composite type, table
type and result row used, an `Enum` per enum type (`_cli.generate_types`), and a decorated stub per function and
procedure, with its ``COMMENT`` as docstring, laid out as ruff's formatter lays it out (`_cli.generate_format`).
Names:

- a composite or enum type ``app.line_item`` becomes ``LineItem``; the rows of ``f``'s OUT parameters or
  ``RETURNS TABLE`` become ``FRow`` (``FResult`` for a procedure), generic (``FRow[T]``) when a polymorphic
  function's OUT parameters are;
- an overloaded function's stubs are named ``<name>__<argument types>``, the types being PostgreSQL's names
  joined by ``_`` (``area__int4_int4``, ``area__float8_float8``), and annotate each argument with its type;
- a parameter without a name is ``arg1``, ``arg2``...

The module is one namespace, as Python reads it: classes take the next free name, after the stubs and the names
the module imports (`_cli.generate_names` names stubs, parameters, fields and enum members, or says why a function
can have no stub). Every stub names its function in full (``@procedure("schema.name")``), so that it calls that function
whatever its own name; a parameter or field whose Python name is not its SQL name names it too.

Functions using a type with no Python counterpart here (pseudo-types other than ``void``, ``record`` and the
polymorphic ones, base types of extensions pgdecor does not know) are not written, nor, unless asked for, those of
extensions; each is reported with the reason.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from pgdecor._plan.catalog import SCHEMA_FUNCTIONS, Function, read_functions

from .generate_format import Param, call, docstring, import_line, literal, signature
from .generate_names import param_names, stub_names
from .generate_types import TAKEN, Module, Unsupported

__all__ = ["generate"]

#: Whether the database has a schema of the name.
_SCHEMA = "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) %s"

#: Functions no stub calls, and why.
_NOT_CALLED = {"trigger": "a trigger function, which triggers call", "event_trigger": "an event trigger function"}


@dataclass(frozen=True)
class Generated:
    """What `generate` made: the module's source, the number of stubs in it, and what was left out (with why)."""

    text: str
    stubs: int
    skipped: list[str]


def generate(dsn: str, schema: str, *, extensions: Sequence[str] = (), is_async: bool = False) -> tuple[str, list[str]]:
    """The module of stubs for *schema*'s functions and procedures, and what was left out (with why): functions of
    an extension only for the *extensions* named; ``async def`` stubs if *is_async*."""
    made = generate_module(dsn, schema, extensions=extensions, is_async=is_async)
    return made.text, made.skipped


def generate_module(dsn: str, schema: str, *, extensions: Sequence[str] = (), is_async: bool = False) -> Generated:
    """`generate`, with the number of stubs written."""
    # One read-only transaction, rolled back: a setting of the session would stay on a pooler's server connection.
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction(force_rollback=True):
        conn.execute("SET TRANSACTION READ ONLY")
        if conn.execute(_SCHEMA, [schema]).fetchone() is None:
            msg = f"the database has no schema {schema!r}; name one of its schemas with --schema"
            raise LookupError(msg)
        installed = {name for (name,) in conn.execute(_EXTENSIONS, [list(extensions)]).fetchall()}
        for name in extensions:
            if name not in installed:
                msg = f"the database has no extension {name!r}; name one that CREATE EXTENSION installed there"
                raise LookupError(msg)
        rows = conn.execute(SCHEMA_FUNCTIONS, [schema]).fetchall()
        module = Module(conn, schema)
        module.type_info(oid for row in rows for oid in [*(row[7] or ()), row[5]])
        functions = read_functions([row[:11] for row in rows], module.types)
        not_called = [_not_called(module, f, row[12], extensions) for f, row in zip(functions, rows, strict=True)]
        names, nameless = stub_names(schema, functions, [why is None for why in not_called], TAKEN)
        module.names.update(names.values())  # before any class takes a name: a stub's name is its function's
        overloaded = {name for name, n in Counter(f.name for f in functions).items() if n > 1}
        stubs, skipped = [], []
        for i, (function, row) in enumerate(zip(functions, rows, strict=True)):
            why = not_called[i] or nameless.get(i)
            if why is not None:
                skipped.append(f"{schema}.{function.signature}: {why}")
                continue
            snapshot = (set(module.imports), dict(module.classes), list(module.sources), set(module.names),
                        module.typevar)  # fmt: skip
            kind = "Procedure" if function.is_procedure else "Function"
            doc = (row[11] or "").strip() or f"{kind} {schema}.{function.name}.".replace("\n", "\\n")
            if function.is_procedure and row[13] == "plpgsql" and _controls_transactions(row[14] or ""):
                doc += "\n\n" + _AUTOCOMMIT
            try:
                stubs.append(
                    _stub(module, function, doc, names[i], overloaded=function.name in overloaded, is_async=is_async)
                )
            except Unsupported as err:
                module.imports, module.classes, module.sources, module.names, module.typevar = snapshot
                skipped.append(f"{schema}.{function.signature}: uses {err}")
    return Generated(_render(module, schema, stubs), len(stubs), skipped)


#: The extensions of the given names the database has.
_EXTENSIONS = (
    "SELECT extname::pg_catalog.text FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) ANY (%s)"
)

#: What the docstring of a procedure that commits or rolls back its own transaction says.
_AUTOCOMMIT = """It commits or rolls back transactions itself (COMMIT or ROLLBACK in its body), which a CALL
may do only outside a transaction block: call it in a session(..., autocommit=True)."""

#: What a PL/pgSQL body holds besides its code: comments, string literals, dollar-quoted strings.
_NOT_CODE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\$(\w*)\$.*?\$\1\$", re.DOTALL)


def _controls_transactions(source: str) -> bool:
    """Whether the PL/pgSQL *source* of a procedure runs COMMIT or ROLLBACK (not in a comment or a string)."""
    return re.search(r"\b(COMMIT|ROLLBACK)\b", _NOT_CODE.sub(" ", source), re.IGNORECASE) is not None


def _not_called(module: Module, function: Function, extension: str | None, extensions: Sequence[str]) -> str | None:
    """Why no stub is written for *function* (of the *extension*, if any), or None."""
    if extension is not None and extension not in extensions:
        return f"a function of extension {extension}, whose stubs --extension {extension} writes"
    returns = module.types[function.rettype].base
    if returns in _NOT_CALLED:
        return f"{_NOT_CALLED[returns]}, not called by stubs"
    if returns == "record" and function.returns_set and not function.outputs:
        return (
            "returns SETOF record, whose columns each call must name in a column definition list; declare OUT "
            "parameters or RETURNS TABLE"
        )
    return None


def _stub(module: Module, function: Function, doc: str, name: str, *, overloaded: bool, is_async: bool) -> str:
    params = []
    for arg, (pname, sqlname) in zip(function.inputs, param_names(function.inputs), strict=True):
        variadic = arg.mode == "v"
        pgtype = arg.type.element if variadic and arg.type.element else arg.type
        annotation = module.annotation(pgtype.oid)
        if not (arg.type.not_null or variadic):
            annotation += " | None"
        hints = [literal(pgtype.spelled)] if overloaded else []
        if sqlname is not None:
            module.imports.add("Arg")
            hints.append(f"Arg({literal(sqlname)})")
        if hints:
            module.imports.add("from typing import Annotated")
        default = ""
        if arg.has_default and not variadic:
            module.imports.add("DEFAULT")
            default = " = DEFAULT"
        params.append(Param(f"*{pname}: " if variadic else f"{pname}: ", annotation, tuple(hints), default))
    returns = _returns(module, function, name)
    target = ".".join(_sql_part(part) for part in (module.schema, function.name))
    decorator = call("@procedure", [literal(target)])
    header = signature("async " if is_async else "", name, params, returns)
    return f"{decorator}\n{header}\n    {docstring(doc)}\n    raise NotImplementedError"


def _sql_part(name: str) -> str:
    """A part of ``@procedure("schema.name")``: in double quotes, as SQL quotes it, if it has a ``.`` or begins
    with a quote."""
    return '"' + name.replace('"', '""') + '"' if "." in name or name.startswith('"') else name


def _returns(module: Module, function: Function, name: str) -> str:
    outputs = [a for a in function.args if a.mode in ("o", "b", "t")]
    if outputs:
        suffix = "Result" if function.is_procedure else "Row"
        row = module.class_name(name + "_" + suffix)
        fields = [(a.name or f"column{i + 1}", a.type.oid, False) for i, a in enumerate(outputs)]
        kind = "procedure" if function.is_procedure else "function"
        if module.dataclass(row, f"The result of {kind} {module.schema}.{function.name}.", fields):
            row += "[T]"
        if function.is_procedure:
            return row
        return f"list[{row}]" if function.returns_set else f"{row} | None"
    if function.is_procedure:
        return "None"
    module.type_info([function.rettype])
    pgtype = module.types[function.rettype]
    if pgtype.base == "void":
        return "None"
    annotation = module.annotation(pgtype.oid)
    if function.returns_set:
        return f"list[{annotation}]" if pgtype.kind == "c" else f"list[{annotation} | None]"
    return f"{annotation} | None"


def _render(module: Module, schema: str, stubs: list[str]) -> str:
    plain = sorted(i for i in module.imports if i.startswith("import "))
    names: dict[str, set[str]] = {}
    for line in module.imports:
        if line.startswith("from "):
            source, _, name = line.removeprefix("from ").partition(" import ")
            names.setdefault(source, set()).add(name)
    if stubs:
        names["pgdecor"] = {"procedure"} | ({"DEFAULT", "Arg"} & module.imports)
    froms = {source: import_line(source, names[source]) for source in sorted(names)}
    third_party = [line for source, line in froms.items() if source.split(".")[0] in ("pgdecor", "psycopg")]
    standard = [*plain, *(line for line in froms.values() if line not in third_party)]
    header = [
        docstring(f"Stubs for the functions and procedures of schema {schema}: generated by `pgdecor generate`."),
        "",
        "from __future__ import annotations",
    ]
    for group in (standard, third_party):  # isort's sections, as ruff checks them
        if group:
            header += ["", *group]
    blocks = [*module.sources, *stubs]
    if module.typevar:
        blocks.insert(0, 'T = TypeVar("T")  # what a polymorphic function (anyelement, anyarray, ...) is given')
    if not blocks:
        return "\n".join(header) + "\n"
    after_imports = "\n\n" if module.typevar else "\n\n\n"  # isort: one blank line before a statement, two before a def
    return "\n".join(header) + after_imports + "\n\n\n".join(blocks) + "\n"
