"""The ``pgdecor`` command."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import psycopg

from ._database import check_conninfo
from ._errors import Error


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgdecor", description="Typed stubs for PostgreSQL functions.")
    parser.add_argument("--debug", action="store_true", help="show a failure's traceback, not one line")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="call a small knowledge base of stored functions through stubs")
    demo.add_argument("--dsn", help="server to use (default: $DATABASE_URL, else a throwaway server)")
    check = commands.add_parser("check", help="verify the stubs of some modules against a live database")
    check.add_argument("modules", nargs="+", metavar="MODULE_OR_PACKAGE", help="importable module or package names")
    check.add_argument("--dsn", help="the database (default: $DATABASE_URL)")
    check.add_argument("--format", choices=["text", "json"], default="text", help="one line per problem, or JSON")
    generate = commands.add_parser("generate", help="write typed stubs for the functions of a schema")
    generate.add_argument("--dsn", help="the database (default: $DATABASE_URL)")
    generate.add_argument("--schema", required=True, help="the schema whose functions and procedures to write")
    generate.add_argument("-o", "--output", help="the file to write (default: standard output)")
    args = parser.parse_args(argv)
    try:
        return run(args, parser)
    except Exception as err:
        if args.debug:
            raise
        print(f"pgdecor {args.command}: {_one_line(err)}", file=sys.stderr)
        return 2


class CommandError(Exception):
    """An expected failure of a command, told in one line."""


def _one_line(err: BaseException) -> str:
    """*err* in one line: what failed, and for an unexpected error its type, and where to see more."""
    first = _first_line(err)
    notes = [n for n in getattr(err, "__notes__", ()) if n.startswith("pgdecor: ")]
    if isinstance(err, (CommandError, Error)):  # pgdecor's errors say what to do
        return first
    if isinstance(err, psycopg.OperationalError):
        hint = notes[0].removeprefix("pgdecor: ") if notes else "check the DSN and that the server runs"
        return f"{first} ({hint})"
    return f"{type(err).__name__}: {first} (run with --debug for the traceback)"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def _import(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception as err:
        msg = (
            f"{name} does not import ({type(err).__name__}: {_first_line(err)}); `python -c 'import {name}'` shows why"
        )
        raise CommandError(msg) from err


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.command in ("check", "generate"):
        dsn = args.dsn or os.environ.get("DATABASE_URL")
        if not dsn:
            parser.error(f"{args.command} needs --dsn or $DATABASE_URL")
        check_conninfo("--dsn", dsn)
        return run_check(args.modules, dsn, args.format) if args.command == "check" else run_generate(args, dsn)
    if args.command == "demo":
        from ._demo import demo_dsn, run  # noqa: PLC0415 - keeps `pgdecor --help` fast

        with demo_dsn(args.dsn) as dsn:
            run(dsn)
    return 0


def run_check(modules: list[str], dsn: str, output: str) -> int:
    from ._check import check_found  # noqa: PLC0415 - keeps `pgdecor --help` fast
    from ._stubs import find_stubs  # noqa: PLC0415

    sys.path.insert(0, str(Path.cwd()))  # as `python -m` would: modules of the current project
    for name in modules:
        _import(name)
    stubs = find_stubs(modules)
    if not stubs:
        msg = f"no stubs found in {', '.join(modules)}: no function there is decorated with @procedure or @query"
        raise CommandError(msg)
    problems = check_found(stubs, dsn)
    if output == "json":
        print(json.dumps([dataclasses.asdict(p) for p in problems], indent=2))
    else:
        for problem in problems:
            print(problem)
        print(f"{len(problems)} problem{'' if len(problems) == 1 else 's'}", file=sys.stderr)
    return 1 if problems else 0


def run_generate(args: argparse.Namespace, dsn: str) -> int:
    from ._generate import generate  # noqa: PLC0415

    try:
        text, skipped = generate(dsn, args.schema)
    except LookupError as err:
        raise CommandError(str(err)) from err
    for reason in skipped:
        print(f"pgdecor generate: skipped {reason}", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
