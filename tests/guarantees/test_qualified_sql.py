"""The guard of tests/guarantees/test_search_path.py's promise: every SQL text pgdecor runs for itself, and every statement it
composes for a stub, read as the server's parser reads it (pglast is PostgreSQL's parser), names each operator,
function and type with its schema, so that no search_path gives it another meaning."""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

import pytest
from pglast import ast as pg
from pglast import parse_sql
from pglast.parser import ParseError
from pglast.visitors import Ancestor, Visitor

import pgdecor
from pgdecor import procedure, session
from pgdecor._plan import catalog as _catalog
from pgdecor._rows import registry as _registry
from pgdecor._sources import replicas as _replay
from pgdecor._wire import guard as _wire_guard
from pgdecor._wire import poolers as _poolers
from tests.fix_db import Exec

PACKAGE = Path(pgdecor.__file__).parent

#: How a string literal that is a statement begins.
_STATEMENT = re.compile(r"\s*(SELECT|WITH|CALL|INSERT|UPDATE|DELETE|SET|SHOW|CREATE|DROP|ALTER|VALUES)\b")

#: psycopg's placeholders, and its escaped ``%``.
_PLACEHOLDER = re.compile(r"%%|%\(\w+\)[sbt]|%[sbt]")


class _Resolved(Visitor):
    """Collects what the search_path resolves in a statement (see `resolved_by_path`)."""

    def __init__(self, own: frozenset[tuple[str, ...]], ctes: frozenset[str] = frozenset()) -> None:
        self.own = own
        #: The statement's common table expressions: names of its own, which no search_path resolves.
        self.ctes = ctes
        self.found: list[str] = []

    def visit(self, ancestors: Ancestor, node: pg.Node) -> None:  # noqa: ARG002 - every node, wherever it is
        if isinstance(node, pg.A_Expr):
            self.catalog("operator", node.name)
        elif isinstance(node, pg.SubLink) and node.operName:
            self.catalog("operator", node.operName)
        elif isinstance(node, pg.SortBy) and node.useOp:
            self.catalog("operator", node.useOp)
        elif isinstance(node, pg.FuncCall) and _names(node.funcname) not in self.own:
            self.catalog("function", node.funcname)
        elif isinstance(node, pg.TypeName) and len(node.names or ()) < 2:
            self.found.append(f"type {'.'.join(_names(node.names))}")
        elif isinstance(node, pg.CollateClause) and len(node.collname or ()) < 2:
            self.found.append(f"collation {'.'.join(_names(node.collname))}")
        elif isinstance(node, pg.RangeVar) and not node.schemaname and node.relname not in self.ctes:
            self.found.append(f"relation {node.relname}")
        elif isinstance(node, pg.CaseExpr) and node.arg is not None:
            self.found.append("operator = of a CASE x WHEN ...")
        elif isinstance(node, pg.JoinExpr) and (node.usingClause or node.isNatural):
            self.found.append("operator = of a JOIN ... USING")

    def catalog(self, what: str, name: Any) -> None:
        names = _names(name)
        if len(names) != 2 or names[0] != "pg_catalog":
            self.found.append(f"{what} {'.'.join(names)}")


def _names(items: Any) -> tuple[str, ...]:
    return tuple(str(item.sval) for item in items or ())


def resolved_by_path(text: str, own: frozenset[tuple[str, ...]] = frozenset()) -> list[str]:
    """What the search_path decides in the SQL *text*: operators and functions not named as pg_catalog's (*own*:
    the user's functions a stub calls, found on the path by design), types, collations and relations named without
    a schema, and the ``=`` that a simple CASE or a JOIN ... USING compare with."""
    numbered = _PLACEHOLDER.sub(lambda m: "%" if m[0] == "%%" else "$1", text)
    tree = parse_sql(numbered)
    ctes = _CteNames()
    ctes(tree)
    visitor = _Resolved(own, frozenset(ctes.names))
    visitor(tree)
    return visitor.found


class _CteNames(Visitor):
    """The names of a statement's common table expressions (``WITH name AS (...)``)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_CommonTableExpr(self, ancestors: Ancestor, node: pg.CommonTableExpr) -> None:  # noqa: ARG002, N802 - pglast's visitor API
        self.names.add(str(node.ctename))


def _in_query_call(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether *node* is the SQL a `@query` stub is given: the user's, not pgdecor's."""
    call = parents.get(node)
    return isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", None)) == "query"


def own_sql() -> dict[str, str]:
    """Every SQL statement pgdecor holds for itself, by where it is: the string literals of its modules that begin
    as statements do, and the module-level strings its templates make. Not the users' (what `@query` stubs are
    given, and the demo's schema, the application it shows), nor templates (``{}``), whose every statement is
    made by composing stubs' calls."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        # Pieces of f-strings are no statements; the demo's schema is the application it shows.
        skipped = {id(part) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for part in n.values}
        skipped |= {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign) and _is_demo_schema(path, n)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or id(node) in skipped or _in_query_call(node, parents):
                continue
            value = node.value.decode() if isinstance(node.value, bytes) else node.value
            if _is_statement(value):
                found.setdefault(value, f"{where}:{node.lineno}")
        if path.stem != "__main__":  # the module's own names, made by running it: a template's statements
            module = importlib.import_module(".".join(["pgdecor", *path.relative_to(PACKAGE).with_suffix("").parts]))
            for name in _assigned(tree):
                value = getattr(module, name)
                if _is_statement(value) and value not in found and (where, name) != DEMO_SCHEMA:
                    found[value] = f"{where}: {name}"
    return found


def _assigned(tree: ast.Module) -> list[str]:
    """The names a module's own top-level statements assign."""
    return [t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)]


def _is_statement(value: object) -> TypeGuard[str]:
    """Whether *value* is the text of a statement, not a template (``{}``) for one."""
    if not isinstance(value, str) or not _STATEMENT.match(value):
        return False
    if "{" not in value:
        return True
    try:
        parse_sql(_PLACEHOLDER.sub("$1", value))
    except ParseError:
        return False
    return True


#: The schema of the application `pgdecor demo` shows: its functions are the application's code, as a user writes it.
DEMO_SCHEMA = ("_cli/demo.py", "SETUP")


def _is_demo_schema(path: Path, node: ast.Assign) -> bool:
    where = path.relative_to(PACKAGE).as_posix()
    return [(where, getattr(t, "id", None)) for t in node.targets] == [DEMO_SCHEMA]


def test_the_guard_finds_what_the_search_path_resolves() -> None:
    """The guard below reports each operator, function, type, relation and comparison the search_path would pick."""
    assert resolved_by_path("SELECT 1") == []
    assert sorted(
        resolved_by_path(
            "SELECT t.oid = ANY(%(oids)s), x IN (1, 2), f(x), jsonb_populate_record(NULL::price, %s::jsonb)::text, "
            "CASE a WHEN 1 THEN 2 END, a IS DISTINCT FROM b, 'x' COLLATE \"C\" FROM pg_type t JOIN u USING (id)"
        )
    ) == [
        "collation C", "function f", "function jsonb_populate_record", "operator =", "operator =", "operator =",
        "operator = of a CASE x WHEN ...", "operator = of a JOIN ... USING", "relation pg_type", "relation u",
        "type jsonb", "type price", "type text",
    ]  # fmt: skip
    qualified = (
        "SELECT t.oid OPERATOR(pg_catalog.=) ANY (%(oids)s::pg_catalog.oid[]), 1::integer, NULL::app.price, "
        'pg_catalog.concat(\'a\', %b::timestamp with time zone), "get_user"("id" => %b::bigint) '
        "FROM pg_catalog.pg_type t WHERE t.typname OPERATOR(pg_catalog.~~) '%%x' ORDER BY 1"
    )
    assert resolved_by_path(qualified, own=frozenset({("get_user",)})) == []
    assert resolved_by_path(qualified) == ["function get_user"]
    # A common table expression is the statement's own name: no search_path resolves it, as it does a table's.
    assert resolved_by_path("WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n FROM c) SELECT * FROM c, d") == [
        "relation d"
    ]


@pytest.mark.slow
def test_the_sql_pgdecor_runs_for_itself_names_everything_with_its_schema() -> None:
    """Every statement pgdecor runs for itself (catalog reads, type descriptions, probes, commit tokens, the wire's
    self-test, check and generate) names each operator, function and type with its schema."""
    found = own_sql()
    seen = [_catalog.FUNCTIONS_QUERY, _catalog.SCHEMA_FUNCTIONS, _catalog.TYPES_QUERY, _registry.DESCRIBE_QUERY,
            _replay.LOOK, _poolers.PROBE_WITH_TIMEOUT, _wire_guard._PROBE]  # fmt: skip
    assert [text for text in seen if text not in found] == []
    problems = {where: resolved_by_path(text) for text, where in found.items()}
    assert {where: names for where, names in problems.items() if names} == {}


GUARD_SCHEMA = """
CREATE TYPE gmood AS ENUM ('a', 'b');
CREATE TYPE gpair AS (a int, b text);
CREATE DOMAIN gpositive AS int CHECK (VALUE > 0);
CREATE DOMAIN gtags AS text[];
CREATE FUNCTION every_type(
    i int, ts timestamptz, t text, c char(3), ch "char", bt bit(3), j json, jb jsonb, m gmood, ms gmood[],
    p gpair, ps gpair[], dp gpositive, dps gpositive[], tags gtags, ints int[], texts text[]
) RETURNS text LANGUAGE sql AS $$ SELECT 'ok' $$;
CREATE FUNCTION same(x anyelement, xs anyarray) RETURNS anyelement LANGUAGE sql AS $$ SELECT x $$;
CREATE PROCEDURE bump(p gpair, INOUT n int) LANGUAGE plpgsql AS $$ BEGIN n := n + 1; END $$;
CREATE FUNCTION pair(a int) RETURNS gpair LANGUAGE sql AS $$ SELECT ROW(a, 'x')::gpair $$;
CREATE FUNCTION pairs(n int) RETURNS SETOF gpair LANGUAGE sql AS $$ SELECT ROW(i, 'x')::gpair FROM generate_series(1, n) i $$;
"""


T = TypeVar("T")


@dataclass
class GPair:
    a: int | None
    b: str | None


@dataclass
class Bumped:
    n: int


@procedure
def every_type(  # noqa: PLR0917 - one argument of each kind of type
    i: Any, ts: Any, t: Any, c: Any, ch: Any, bt: Any, j: Any, jb: Any, m: Any, ms: Any, p: Any, ps: Any,
    dp: Any, dps: Any, tags: Any, ints: Any, texts: Any,
) -> str: ...  # fmt: skip


@procedure
def same(x: T, xs: list[T]) -> T: ...


@procedure
def bump(p: GPair | None, n: int) -> Bumped: ...


@procedure
def pair(a: int) -> GPair | None: ...


@procedure
def pairs(n: int) -> list[GPair]: ...


def test_statements_composed_for_stubs_name_everything_but_the_function_with_its_schema(
    pg_dsn: str, pg_exec: Exec
) -> None:
    """The statement a stub sends (`.sql`) names every operator, function and cast type with its schema, whatever
    the declared types (SQL's keywords for PostgreSQL's types stay as they are); only the function called is found
    on the search_path, as the stub asks."""
    pg_exec(GUARD_SCHEMA)
    with session(pg_dsn):
        assert every_type(*[None] * 17) == "ok"
        assert same(2, [1]) == 2
        assert bump(GPair(1, "x"), 1) == Bumped(2)
        assert pair(1) == GPair(1, "x")
        assert pairs(1) == [GPair(1, "x")]
    stubs: dict[str, Any] = {"every_type": every_type, "same": same, "bump": bump, "pair": pair, "pairs": pairs}
    own = frozenset((name,) for name in stubs)
    assert {name: resolved_by_path(stub.sql, own) for name, stub in stubs.items()} == {name: [] for name in stubs}
    composed = str(every_type.sql)
    assert '"i" => %s::integer, "ts" => %s::timestamp with time zone, "t" => %s::pg_catalog.text' in composed
