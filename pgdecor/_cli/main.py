"""The ``pgdecor`` command."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import psycopg

from pgdecor._errors import Error
from pgdecor._server.server import temporary_dsn
from pgdecor._server.signals import Terminated
from pgdecor._sources.config import check_conninfo

from .offline import CommandError, SchemaFiles, module_paths, rerun, watch


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgdecor", description="Typed stubs for PostgreSQL functions.")
    parser.add_argument("--debug", action="store_true", help="show a failure's traceback, not one line")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="call a small knowledge base of stored functions through stubs")
    demo.add_argument("--dsn", help="server to use (default: $DATABASE_URL, else a throwaway server)")
    check = commands.add_parser("check", help="verify the stubs of some modules against a database")
    check.add_argument("modules", nargs="+", metavar="MODULE_OR_PACKAGE", help="importable module or package names")
    check.add_argument("--format", choices=["text", "json"], default="text", help="one line per problem, or JSON")
    generate = commands.add_parser("generate", help="write typed stubs for the functions of a schema")
    generate.add_argument("--schema", required=True, help="the schema whose functions and procedures to write")
    generate.add_argument("-o", "--output", help="the file to write (default: standard output)")
    generate.add_argument(
        "--extension",
        action="append",
        default=[],
        metavar="NAME",
        help="also write stubs for the functions the extension NAME installed in the schema (repeat for more)",
    )
    generate.add_argument("--async", dest="is_async", action="store_true", help="write async stubs (async def)")
    for command in (check, generate):
        source = command.add_argument_group("the database (one of)")
        source.add_argument("--dsn", help="a live database (default: $DATABASE_URL)")
        source.add_argument(
            "--schema-file",
            action="append",
            default=[],
            metavar="FILE",
            help="DDL to apply to a throwaway server instead (repeat for more files, applied in order)",
        )
        source.add_argument(
            "--migrations", metavar="FOLDER", help="a folder of .sql files to apply in order (after --schema-file)"
        )
        command.add_argument(
            "--watch", action="store_true", help="run again whenever the modules or schema files change (Ctrl-C ends)"
        )
    args = parser.parse_args(argv)
    try:
        return run(args, parser)
    except Terminated as stopped:  # its throwaway server stopped and removed on the way out
        print(f"pgdecor {args.command}: {stopped}", file=sys.stderr)
        return 128 + stopped.signum
    except Exception as err:
        if args.debug:
            raise
        print(f"pgdecor {args.command}: {_shown(_one_line(err))}", file=sys.stderr)
        return 2


def _shown(text: str) -> str:
    """*text* with what a terminal would not show as itself (newlines, escape sequences, bidirectional overrides)
    written as `repr` writes it: a name read from the catalog cannot start a line of its own or drive the
    terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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
        return run_on_database(args, parser)
    if args.command == "demo":
        from .demo import demo_dsn, run  # noqa: PLC0415 - keeps `pgdecor --help` fast

        with demo_dsn(args.dsn) as dsn:
            run(dsn)
    return 0


def run_on_database(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`check` or `generate`, on a live database or one built from schema files; once, or at every change."""
    files = SchemaFiles(args.schema_file, args.migrations) if args.schema_file or args.migrations else None
    dsn = None
    if files is None:
        dsn = args.dsn or os.environ.get("DATABASE_URL")
        if not dsn:
            parser.error(f"{args.command} needs --dsn, $DATABASE_URL, --schema-file or --migrations")
        check_conninfo("--dsn" if args.dsn else "$DATABASE_URL", dsn)
    elif args.dsn:
        parser.error("--dsn and --schema-file/--migrations: give one database")
    if args.watch:
        return run_watched(args, files, dsn)
    if files is None:
        assert dsn is not None
        return run_once(args, dsn)
    with temporary_dsn() as server, files.database(server) as built:
        return run_once(args, built)


def run_once(args: argparse.Namespace, dsn: str) -> int:
    return run_check(args.modules, dsn, args.format) if args.command == "check" else run_generate(args, dsn)


def run_watched(args: argparse.Namespace, files: SchemaFiles | None, dsn: str | None) -> int:
    """The command in a new process at every change of its modules or schema files (on a database built anew
    each time), so that changed modules are imported anew; one server for the whole watch."""
    modules = args.modules if args.command == "check" else []
    sys.path.insert(0, str(Path.cwd()))

    def paths() -> list[Path]:
        found = module_paths(modules)
        if files is not None:
            found += files.files + ([files.folder] if files.folder else [])
        return found

    if not paths():
        msg = "--watch has nothing to watch: give --schema-file or --migrations (or, for check, modules it can find)"
        raise CommandError(msg)

    if args.command == "check":
        argv = ["check", *modules, "--format", args.format]
    else:
        argv = ["generate", "--schema", args.schema, *(["-o", args.output] if args.output else [])]
        argv += [*(f"--extension={name}" for name in args.extension), *(["--async"] if args.is_async else [])]

    with contextlib.ExitStack() as stack:
        server = stack.enter_context(temporary_dsn()) if files is not None else None

        def once() -> int:
            if files is None or server is None:
                assert dsn is not None
                return rerun(argv, dsn)
            try:
                with files.database(server) as built:
                    return rerun(argv, built)
            except CommandError as err:  # a schema file that fails: said, and watched for its fix
                print(f"pgdecor {args.command}: {_shown(str(err))}", file=sys.stderr, flush=True)
                return 2

        return watch(paths, once)


def run_check(modules: list[str], dsn: str, output: str) -> int:
    from .check import check_found  # noqa: PLC0415 - keeps `pgdecor --help` fast
    from .discover import find_stubs  # noqa: PLC0415

    sys.path.insert(0, str(Path.cwd()))  # as `python -m` would: modules of the current project
    for name in modules:
        _import(name)
    skipped: list[str] = []
    stubs = find_stubs(modules, skipped)
    for name in skipped:
        print(f"pgdecor check: did not look into {_shown(name)}", file=sys.stderr)
    if not stubs:
        msg = f"no stubs found in {', '.join(modules)}: no function there is decorated with @procedure or @query"
        raise CommandError(msg)
    problems = check_found(stubs, dsn)
    if output == "json":
        print(json.dumps([dataclasses.asdict(p) for p in problems], indent=2))
    else:
        for problem in problems:
            print(_shown(str(problem)))
        print(f"{len(problems)} problem{'' if len(problems) == 1 else 's'}", file=sys.stderr)
    return 1 if problems else 0


def run_generate(args: argparse.Namespace, dsn: str) -> int:
    from .generate import generate_module  # noqa: PLC0415

    try:
        made = generate_module(dsn, args.schema, extensions=args.extension, is_async=args.is_async)
    except LookupError as err:
        raise CommandError(str(err)) from err
    for reason in made.skipped:
        print(f"pgdecor generate: skipped {_shown(reason)}", file=sys.stderr)
    if not made.stubs:  # an empty module is never written in silence
        why = "all left out, each said above" if made.skipped else "it has no functions or procedures"
        print(f"pgdecor generate: no stubs for schema {_shown(args.schema)}: {why}", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(made.text, encoding="utf-8")
    else:
        sys.stdout.write(made.text)
    return 0
