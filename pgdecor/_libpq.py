"""psycopg, with a libpq to run on: imported first by the package, so that a machine without one is told what to
install (psycopg itself says only that it found no "pq wrapper"). The ``pgdecor`` command says it in one line, as
it says its other failures.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__: list[str] = []


def _the_command() -> bool:
    """Whether this process is the ``pgdecor`` command: its script, or ``python -m pgdecor``."""
    argv = getattr(sys, "orig_argv", [])
    module = "pgdecor" in argv[1:] and argv[argv.index("pgdecor", 1) - 1] == "-m"
    return module or "-mpgdecor" in argv or Path(sys.argv[0]).name == "pgdecor"


try:
    import psycopg  # noqa: F401 - imported for its check of libpq
except ImportError as err:
    if not str(err).startswith(("no pq wrapper available", "couldn't import requested psycopg")):
        raise
    tried = [line.removeprefix("- ") for line in str(err).splitlines() if line.startswith("- ")] or [str(err)]
    msg = (
        f"pgdecor needs libpq, PostgreSQL's client library, and psycopg found none ({'; '.join(tried)}): "
        f"`pip install 'pgdecor[binary]'` brings psycopg's own build of it; or install the system's "
        f"(`apt-get install libpq5`, `brew install libpq`)"
    )
    if _the_command():
        print(msg, file=sys.stderr)  # noqa: T201 - the command's failures are one line
        raise SystemExit(2) from None
    raise ImportError(msg) from None
