"""The ``pgdecor`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgdecor", description="Typed stubs for PostgreSQL functions.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="call a small knowledge base of stored functions through stubs")
    demo.add_argument("--dsn", help="server to use (default: $DATABASE_URL, else a throwaway server)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import demo_dsn, run  # noqa: PLC0415 - keeps `pgdecor --help` fast

        with demo_dsn(args.dsn) as dsn:
            run(dsn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
