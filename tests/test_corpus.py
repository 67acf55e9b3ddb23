"""`generate` → import → mypy --strict → ruff → `check` → call, on schemas written in the style of real ones
(`tests/corpus/*.sql`, and the RPC-style schema of `test_generate`): every module imports and checks clean, at
least 97% of the functions and procedures that are not triggers get a stub, and every stub that can be given
sample arguments runs."""

from __future__ import annotations

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
from typing import Any

import byhand
import psycopg
import pytest
from psycopg import sql
from test_generate import RPC, rpc_schema

from pgdecor import check, session, transaction
from pgdecor._generate import generate

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "corpus"

#: Functions and procedures of a schema that stubs could call: not triggers, event triggers or aggregates.
ELIGIBLE = """
SELECT count(*) FROM pg_catalog.pg_proc p
WHERE p.pronamespace = %s::regnamespace AND p.prokind IN ('f', 'p')
  AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
"""

#: Errors that would mean the stub called the function wrongly, rather than that the sample values do not suit it.
CALL_FAULTS = {"42883", "42725", "42804", "42P18", "42846"}

SCHEMAS = {"rental": (CORPUS / "rental.sql").read_text(), "audit": (CORPUS / "audit.sql").read_text(), "rpc": RPC}


@pytest.fixture
def corpus(pg_server_dsn: str) -> Iterator[dict[str, str]]:
    """Each corpus schema loaded into a schema of its own (its functions resolve their names there)."""
    names = {key: f"corpus_{key}_{uuid.uuid4().hex[:6]}" for key in SCHEMAS}
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        for key, name in names.items():
            conn.execute(sql.SQL("CREATE SCHEMA {0}; SET search_path = {0}").format(sql.Identifier(name)))
            conn.execute(rpc_schema(conn) if key == "rpc" else SCHEMAS[key])
            for (function,) in conn.execute(
                "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = %s::regnamespace AND prokind <> 'a'",
                [name],
            ).fetchall():
                conn.execute(sql.SQL("ALTER ROUTINE {} SET search_path FROM CURRENT").format(sql.SQL(function)))
    try:
        yield names
    finally:
        with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
            for name in names.values():
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def sample(annotation: Any, module: Any) -> Any:
    """A valid value for a parameter annotated *annotation*, or raise LookupError."""
    tp = typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation
    members = [a for a in typing.get_args(tp) if a is not type(None)] if typing.get_origin(tp) in (
        typing.Union, __import__("types").UnionType) else [tp]  # fmt: skip
    tp = members[0]
    if typing.get_origin(tp) is list:
        return [sample(typing.get_args(tp)[0], module)]
    values: dict[Any, Any] = {int: 1, str: "a", bool: True, float: 1.5, Decimal: Decimal("1.5"),
                              dt.datetime: dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc), dt.date: dt.date(2024, 6, 1)}  # fmt: skip
    if tp in values:
        return values[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp))
    raise LookupError(tp)


def test_corpus_generates_imports_types_lints_checks_and_runs(
    corpus: dict[str, str], pg_server_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    figures: Callable[[str], None],
) -> None:  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    eligible = stubs = called = compared = 0
    differ: list[str] = []
    reasons: list[str] = []
    failed: list[str] = []
    faults: list[str] = []
    modules: dict[str, Any] = {}
    for key, schema in corpus.items():
        text, skipped = generate(pg_server_dsn, schema)
        (tmp_path / f"{schema}.py").write_text(text)
        modules[key] = __import__(schema)
        with psycopg.connect(pg_server_dsn) as conn:
            (count,) = conn.execute(ELIGIBLE, [sql.Identifier(schema).as_string(conn)]).fetchone() or (0,)
        not_called = [r for r in skipped if "trigger function" in r]
        eligible += count
        stubs += count - (len(skipped) - len(not_called))
        reasons += [r for r in skipped if r not in not_called]
        assert check([schema], pg_server_dsn) == [], key
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\nplugins = pgdecor.mypy\n")
    files = [str(tmp_path / f"{schema}.py") for schema in corpus.values()]
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental", *files],
        capture_output=True, text=True, check=False, env={"MYPYPATH": str(ROOT), "PATH": ""},
    )  # fmt: skip
    assert mypy.returncode == 0, mypy.stdout
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", *files], capture_output=True, text=True, check=False,
        cwd=tmp_path,
    )  # fmt: skip
    assert ruff.returncode == 0, ruff.stdout
    with psycopg.connect(pg_server_dsn) as conn:  # every call in one transaction, rolled back at the end
        for module in modules.values():
            for name, stub in vars(module).items():
                if not (callable(stub) and hasattr(stub, "many")) or name.startswith("_"):  # a decorated stub
                    continue
                params = inspect.signature(stub).parameters.values()
                hints = typing.get_type_hints(stub.__wrapped__)
                try:
                    args = [sample(hints[p.name], module) for p in params]
                except LookupError:
                    continue
                schema = module.__name__
                try:
                    with conn.transaction(force_rollback=True):  # by hand first: the stub may change the data
                        rows = byhand.rows_by_hand(conn, schema, name, args)
                except psycopg.Error:  # the sample arguments do not suit the function: the stub must fail too
                    rows = byhand.REFUSED
                try:
                    with session(conn), transaction():
                        result = stub(*args)
                except psycopg.Error as err:  # the sample arguments may not suit the function's data
                    failed.append(f"{name}: {err.sqlstate} {err.diag.message_primary}")
                    faults.append(err.sqlstate or "")
                    continue
                called += 1
                if rows is byhand.REFUSED:
                    differ.append(f"{name}{tuple(args)}: the stub returned {result!r}, the call by hand failed")
                elif rows is not None:
                    compared += 1
                    if not byhand.same_result(result, rows, hints["return"]):
                        differ.append(f"{name}{tuple(args)}: the stub returned {result!r}, by hand {rows!r}")
        conn.rollback()
    coverage = stubs / eligible
    figures(f"{stubs} stubs for {eligible} eligible functions and procedures ({coverage:.1%}); {called} called with "
            f"sample arguments ({compared} compared with the call by hand, {len(differ)} differ), {len(failed)} "
            f"refused them ({failed}); left out: {reasons}")  # fmt: skip
    assert coverage >= 0.97, reasons
    assert not set(faults) & CALL_FAULTS, failed
    assert called >= stubs * 3 // 4
    assert differ == []
