"""psycopg, with a libpq to run on: imported first by the package, so that a machine without one is told what to
install (psycopg itself says only that it found no "pq wrapper").
"""

from __future__ import annotations

__all__: list[str] = []

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
    raise ImportError(msg) from None
