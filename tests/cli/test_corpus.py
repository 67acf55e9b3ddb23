"""`generate` → import → mypy --strict, pyright strict, ty, pyrefly, ruff → `check` → call, on schemas written in the
style of real ones (`tests/corpus/*.sql`: among them names Python spells otherwise and an extension installed with
CREATE EXTENSION, and the RPC-style schema of `test_generate`): every function that is not a trigger gets a stub or
a precise reason, every module (sync and async) imports and checks clean, and every stub that can be given sample
arguments returns what the same call by hand returns."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import inspect
import subprocess
import sys
import typing
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import pytest
from psycopg import sql

from pgdecor import check, session, transaction
from pgdecor.__main__ import main
from pgdecor._cli.generate import generate
from pgdecor.testing import schema_dsn
from tests.cli.test_generate import RPC, rpc_schema
from tests.utils import byhand

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "corpus"

#: Functions and procedures of a schema that stubs could call: not triggers, event triggers or aggregates.
ELIGIBLE = """
SELECT count(*) FROM pg_catalog.pg_proc p
WHERE p.pronamespace = %s::regnamespace AND p.prokind IN ('f', 'p')
  AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
"""

#: Errors that would mean the stub called the function wrongly, rather than that the sample values do not suit it.
CALL_FAULTS = {"42883", "42725", "42804", "42P18", "42846"}

#: The corpus schemas; "extension" is the script of an extension, installed with CREATE EXTENSION.
SCHEMAS = {
    "rental": (CORPUS / "rental.sql").read_text(),
    "audit": (CORPUS / "audit.sql").read_text(),
    "edge": (CORPUS / "edge.sql").read_text(),
    "extension": (CORPUS / "extension.sql").read_text(),
    "rpc": RPC,
}

#: The only functions of the corpus left out: what no stub can call as it is declared.
LEFT_OUT = {
    (
        "recs(): returns SETOF record, whose columns each call must name in a column definition list; declare OUT "
        "parameters or RETURNS TABLE"
    )
}

#: Type checkers that must accept every generated module, as its users run them.
CHECKERS = {
    "mypy": [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file", "mypy.ini"],
    "pyright": [sys.executable, "-m", "pyright", "--project", "pyrightconfig.json", "--pythonpath", sys.executable],
    "ty": [sys.executable, "-m", "ty", "check", "--python", sys.executable, "--error-on-warning"],
    "pyrefly": [sys.executable, "-m", "pyrefly", "check", "--python-interpreter-path", sys.executable],
    "ruff": [sys.executable, "-m", "ruff", "check", "--isolated"],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--isolated", "--check"],
}


class Corpus(NamedTuple):
    #: The schema each corpus schema was loaded into.
    schemas: dict[str, str]
    #: The name of the extension installed in schemas["extension"].
    extension: str


@pytest.fixture
def corpus(pg_server_dsn: str) -> Iterator[Corpus]:
    """Each corpus schema loaded into a schema of its own (its functions resolve their names there); the extension's
    from a control file and script written into the server's extension directory for the test, removed after."""
    names = {key: f"corpus_{key}_{uuid.uuid4().hex[:6]}" for key in SCHEMAS}
    extension = f"pgdecor_corpus_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        (sharedir,) = conn.execute("SELECT setting FROM pg_config WHERE name = 'SHAREDIR'").fetchone() or ("",)
        files = [Path(sharedir, "extension", f"{extension}{end}") for end in (".control", "--1.0.sql")]
        try:
            files[0].write_text(
                "comment = 'partitions, as pg_partman keeps them'\ndefault_version = '1.0'\nrelocatable = false\n"
            )
            files[1].write_text(SCHEMAS["extension"])
        except OSError as err:
            pytest.skip(f"the server's extension directory cannot be written here ({err})")
        try:
            for key, name in names.items():
                conn.execute(sql.SQL("CREATE SCHEMA {0}; SET search_path = {0}").format(sql.Identifier(name)))
                if key == "extension":
                    conn.execute(
                        sql.SQL("CREATE EXTENSION {} SCHEMA {}").format(*map(sql.Identifier, (extension, name)))
                    )
                else:
                    conn.execute(rpc_schema(conn) if key == "rpc" else SCHEMAS[key])
                # A procedure that commits cannot have a SET clause: it runs with the search_path of its session.
                for (function,) in conn.execute(
                    "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = %s::regnamespace AND "
                    "prokind <> 'a' AND prosrc !~ '(?n)^\\s*(COMMIT|ROLLBACK)\\s*;'",
                    [sql.Identifier(name).as_string(conn)],
                ).fetchall():
                    conn.execute(sql.SQL("ALTER ROUTINE {} SET search_path FROM CURRENT").format(sql.SQL(function)))
            yield Corpus(names, extension)
        finally:
            for name in names.values():
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
            for file in files:
                file.unlink(missing_ok=True)


def sample(annotation: Any, module: Any) -> Any:
    """A valid value for a parameter annotated *annotation*, or raise LookupError."""
    tp = typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation
    members = [a for a in typing.get_args(tp) if a is not type(None)] if typing.get_origin(tp) in (
        typing.Union, __import__("types").UnionType) else [tp]  # fmt: skip
    tp = members[0]
    if typing.get_origin(tp) is list:
        return [sample(typing.get_args(tp)[0], module)]
    values: dict[Any, Any] = {int: 1, str: "a", bool: True, float: 1.5, Decimal: Decimal("1.5"),
                              dt.datetime: dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc), dt.date: dt.date(2024, 6, 1),
                              dt.timedelta: dt.timedelta(days=1)}  # fmt: skip
    if tp in values:
        return values[tp]
    if isinstance(tp, typing.TypeVar):  # a polymorphic argument: any one type
        return 1
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: sample(hints[f.name], module) for f in dataclasses.fields(tp)})
    raise LookupError(tp)


def stubs_of(module: Any) -> dict[str, Any]:
    """The decorated stubs of a generated module, by name."""
    return {name: stub for name, stub in vars(module).items() if callable(stub) and hasattr(stub, "many")}


def type_check(files: list[Path], directory: Path) -> dict[str, str]:
    """What each type checker and linter says of *files* when it does not accept them."""
    (directory / "mypy.ini").write_text("[mypy]\nstrict = True\n")  # no plugin: the bodies must pass as they are
    (directory / "pyrightconfig.json").write_text('{"typeCheckingMode": "strict", "pythonVersion": "3.10"}')
    failed = {}
    for name, command in CHECKERS.items():
        done = subprocess.run(
            [*command, *map(str, files)], capture_output=True, text=True, check=False, cwd=directory,
            env={"MYPYPATH": str(ROOT), "PATH": "", "HOME": str(directory)},
        )  # fmt: skip
        if done.returncode != 0:
            failed[name] = done.stdout + done.stderr
    return failed


@pytest.mark.slow
def test_corpus_generates_imports_types_lints_checks_and_runs(
    corpus: Corpus, pg_server_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    figures: Callable[[str], None],
) -> None:  # fmt: skip
    """Every function of the corpus that is not a trigger has a stub (or a precise reason), every module (sync and
    async) passes mypy --strict without the plugin, pyright strict, ty, pyrefly and ruff, `check` finds nothing,
    and every stub called with sample arguments returns what the same call by hand returns (async stubs, what the
    sync ones return)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    eligible = stubs = called = compared = 0
    differ: list[str] = []
    reasons: list[str] = []
    failed: list[str] = []
    faults: list[str] = []
    modules: dict[str, Any] = {}
    files: list[Path] = []
    for key, schema in corpus.schemas.items():
        extensions = [corpus.extension] if key == "extension" else []
        text, skipped = generate(pg_server_dsn, schema, extensions=extensions)
        async_text = generate(pg_server_dsn, schema, extensions=extensions, is_async=True)[0]
        for name, source in ((schema, text), (f"{schema}_async", async_text)):
            files.append(tmp_path / f"{name}.py")
            files[-1].write_text(source)
            modules[name] = __import__(name)
        with psycopg.connect(pg_server_dsn) as conn:
            (count,) = conn.execute(ELIGIBLE, [sql.Identifier(schema).as_string(conn)]).fetchone() or (0,)
        not_called = [r for r in skipped if "trigger function" in r]
        eligible += count
        stubs += len(stubs_of(modules[schema]))
        reasons += [r.removeprefix(f"{schema}.") for r in skipped if r not in not_called]
        assert len(stubs_of(modules[schema])) + len(skipped) - len(not_called) == count, key
        assert check([schema, f"{schema}_async"], pg_server_dsn) == [], key
    assert set(reasons) == LEFT_OUT
    assert type_check(files, tmp_path) == {}
    results: dict[tuple[str, str], Any] = {}
    with psycopg.connect(pg_server_dsn) as conn:  # each call in a transaction of its own, rolled back
        for schema in corpus.schemas.values():
            for name, stub in stubs_of(modules[schema]).items():
                params = inspect.signature(stub).parameters.values()
                hints = typing.get_type_hints(stub.__wrapped__)
                try:
                    args = [sample(hints[p.name], modules[schema]) for p in params]
                except LookupError:
                    continue
                # A procedure that commits its own work runs in an autocommit session, as its docstring says.
                autocommit = "autocommit=True" in (stub.__doc__ or "")
                try:
                    with conn.transaction(force_rollback=True):  # by hand first: the stub may change the data
                        rows = byhand.rows_by_hand(conn, schema, stub, args)
                except psycopg.Error:  # the sample arguments do not suit the function: the stub must fail too
                    rows = byhand.REFUSED
                try:
                    result = _call(stub, args, schema_dsn(pg_server_dsn, schema) if autocommit else conn)
                except psycopg.Error as err:  # the sample arguments may not suit the function's data
                    failed.append(f"{name}: {err.sqlstate} {err.diag.message_primary}")
                    faults.append(err.sqlstate or "")
                    continue
                called += 1
                results[schema, name] = (rows, hints["return"], autocommit)
                if rows is byhand.REFUSED:
                    differ.append(f"{name}{tuple(args)}: the stub returned {result!r}, the call by hand failed")
                elif rows is not None:
                    compared += 1
                    if not byhand.same_result(result, rows, hints["return"]):
                        differ.append(f"{name}{tuple(args)}: the stub returned {result!r}, by hand {rows!r}")
    differ += asyncio.run(_async_differ(pg_server_dsn, modules, results))
    figures(f"{stubs} stubs for {eligible} eligible functions and procedures ({stubs / eligible:.1%}); {called} "
            f"called with sample arguments ({compared} compared with the call by hand, {len(differ)} differ), "
            f"{len(failed)} refused them ({failed}); left out: {reasons}")  # fmt: skip
    assert not set(faults) & CALL_FAULTS, failed
    assert called >= stubs * 3 // 4
    assert differ == []


def _call(stub: Any, args: list[Any], source: str | psycopg.Connection[Any]) -> Any:
    """The stub's result in a session of *source*: a transaction of the connection's, rolled back, or a DSN's
    autocommit session, where a procedure that commits its own work runs, as its docstring says."""
    if isinstance(source, str):
        with session(source, autocommit=True):
            return stub(*args)
    with source.transaction(force_rollback=True), session(source), transaction():
        return stub(*args)


async def _async_differ(dsn: str, modules: dict[str, Any], results: dict[tuple[str, str], Any]) -> list[str]:
    """Each async stub called as its sync twin was (with the same sample arguments, in a transaction rolled back or in
    an autocommit session): where its result is not what the call by hand returned."""
    differ = []
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        for (schema, name), (rows, returns, autocommit) in results.items():
            module = modules[f"{schema}_async"]
            stub = getattr(module, name)
            hints = typing.get_type_hints(stub.__wrapped__)
            args = [sample(hints[p.name], module) for p in inspect.signature(stub).parameters.values()]
            if autocommit:
                async with session(schema_dsn(dsn, schema), autocommit=True):
                    result = await stub(*args)
            else:
                async with conn.transaction(force_rollback=True), session(conn), transaction():
                    result = await stub(*args)
            if rows is not None and rows is not byhand.REFUSED and not byhand.same_result(result, rows, returns):
                differ.append(f"async {name}{tuple(args)}: the stub returned {result!r}, by hand {rows!r}")
    return differ


def test_real_world_names_and_types_are_written_as_python_spells_them(corpus: Corpus, pg_server_dsn: str) -> None:
    """Keywords and names that are no identifiers get Python names with the SQL name kept (the function's in the
    decorator, an argument's in `Arg`, a column's in the field's metadata); a domain over a domain over tsvector is
    `str`, `"char"` is `str`; a polymorphic function's row is generic; a procedure that commits says it needs an
    autocommit session, and one that only mentions COMMIT does not; `--async` writes `async def` stubs."""
    schema = corpus.schemas["edge"]
    text, skipped = generate(pg_server_dsn, schema)
    assert skipped == []
    assert f'@procedure("{schema}.assert")\ndef assert_(\n    pass_: Annotated[bool | None, Arg("pass")],\n' in text
    assert f"@procedure('{schema}.\"welcome.html\"')\ndef welcome_html() -> str | None:" in text
    assert f'@procedure("{schema}.1st_article")\ndef _1st_article() -> list[Articles]:' in text
    assert '    from_: Annotated[int | None, Arg("from")],\n    def_: Annotated[str | None, Arg("def")],\n' in text
    assert (
        "class Link:\n"
        f'    """Composite type {schema}.link."""\n\n'
        "    http_postgrest_com_foo: str | None = field(\n"
        '        metadata={"column": "http://postgrest.com/foo"},\n'
        "    )\n"
        '    int_: int | None = field(metadata={"column": "int"})\n'
        '    from_: int | None = field(metadata={"column": "from"})\n'
        '    kind: str | None = field(metadata={"column": "__kind"})\n'
        "    brief: str\n"
    ) in text
    assert "class RestoreChangeRow(Generic[T]):\n" in text
    assert "def restore_changes(n: int | None, value: T | None) -> list[RestoreChangesRow[T]]:" in text
    assert "def titled(t: str | None) -> list[Articles]:" in text
    assert "    status: str\n    words: str | None\n    title: str | None\n" in text
    archive = text.split(f'@procedure("{schema}.archive")')[1].split("@procedure")[0]
    touch_log = text.split(f'@procedure("{schema}.touch_log")')[1].split("@procedure")[0]
    assert "call it in a session(..., autocommit=True)" in archive
    assert "autocommit" not in touch_log
    async_text = generate(pg_server_dsn, schema, is_async=True)[0]
    assert "async def assert_(\n" in async_text
    assert async_text.count("async def ") == text.count("\ndef ") == 20


def test_functions_of_an_extension_are_each_reported_unless_asked_for(
    corpus: Corpus, pg_server_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`generate` leaves out the functions an extension installed, saying so for each of them (and that it wrote
    no stub), unless `--extension` names the extension; an extension the database lacks is refused."""
    schema, extension = corpus.schemas["extension"], corpus.extension
    functions = ["apply_constraints(p_parent_table text, p_child_table text)", "check_default(p_exact_count boolean)",
                 "create_parent(p_parent_table text, p_control text, p_interval text, p_premake integer)",
                 "dump_partitioned_table_definition(p_parent_table text, p_ignore_template_table boolean)",
                 "partition_data_time(p_parent_table text, p_batch_count integer, p_batch_interval interval)",
                 "run_maintenance_proc(IN p_wait integer, IN p_analyze boolean)",
                 "show_partitions(p_parent_table text, p_order text)"]  # fmt: skip
    assert main(["generate", "--schema", schema, "--dsn", pg_server_dsn]) == 0
    out, err = capsys.readouterr()
    assert "@procedure" not in out
    assert err.splitlines() == [
        *(f"pgdecor generate: skipped {schema}.{f}: a function of extension {extension}, whose stubs --extension "
          f"{extension} writes" for f in functions),
        f"pgdecor generate: no stubs for schema {schema}: all left out, each said above",
    ]  # fmt: skip
    assert main(["generate", "--schema", schema, "--dsn", pg_server_dsn, "--extension", extension]) == 0
    out, err = capsys.readouterr()
    assert (out.count("@procedure("), err) == (len(functions), "")
    assert main(["generate", "--schema", schema, "--dsn", pg_server_dsn, "--extension", "pg_nosuch"]) == 2
    assert capsys.readouterr().err == (
        "pgdecor generate: the database has no extension 'pg_nosuch'; name one that CREATE EXTENSION installed there\n"
    )
