"""A throwaway PostgreSQL server for tests, demos and benchmarks, and pytest fixtures built on it.

`TemporaryServer` runs ``initdb`` in a temporary directory and starts the server on a unix socket there, with
durability switched off (fsync, synchronous_commit, full_page_writes) because the data is thrown away. When run
as root it runs the server as the ``postgres`` OS user, as PostgreSQL requires, with that user's own groups and
none of root's (from a layout of its programs in the server's directory where that user cannot reach them: see
`_server.programs`). The server's programs run without the caller's ``PG*`` variables (``PGPORT``, ``PGDATA``, ...), and
its DSN names everything they could change (see `TemporaryServer`). `stop` removes everything; SIGTERM and SIGHUP
stop it, as Ctrl-C does (see `_server.signals`)::

    with TemporaryServer() as server:
        with session(server.dsn):
            ...

In a test suite, enable the fixtures with ``pytest_plugins = ["pgdecor.testing"]`` in ``conftest.py``:

- ``pg_server_dsn`` (session scope): the DSN of ``$PGDECOR_TEST_DSN`` if set, else of a throwaway server
  started once for the whole run;
- ``pg_dsn``: a DSN whose ``search_path`` starts with a fresh schema, dropped after the test (the schema's
  name is also the ``application_name``, to find the test's backends in ``pg_stat_activity``);
- ``pg_exec``: runs setup SQL (``CREATE FUNCTION ...``) in that schema, committed at once;
- ``pg_transaction``: a connection to ``pg_server_dsn`` in a transaction rolled back after the test, with a session
  open on it while the test runs: for tests of a schema created once for the run, each test starting from it;
- ``apg_transaction``: the same for async tests (under anyio's pytest plugin or pytest-asyncio).

The fixtures are a pytest plugin, found through its entry point once pgdecor is installed; ``pytest_plugins =
["pgdecor.testing"]`` in ``conftest.py`` does the same where plugins are not loaded automatically.

`assert_stubs_match` is `pgdecor.check` as a test assertion.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ._server.server import DSN_ENV, ServerNotFoundError, TemporaryServer, embedded_dsn, find_bindir, temporary_dsn
from ._session.api import Session, open_session
from ._session.modes import DEFAULT_MODE
from ._sources.config import check_conninfo

__all__ = [
    "ServerNotFoundError",
    "TemporaryServer",
    "assert_stubs_match",
    "embedded_dsn",
    "find_bindir",
    "schema_dsn",
    "temporary_dsn",
]


def schema_dsn(dsn: str, schema: str) -> str:
    """*dsn* with ``search_path`` set to *schema* first, then ``public``, and *schema* as application_name."""
    check_conninfo("schema_dsn()", dsn)
    options = conninfo_to_dict(dsn).get("options") or ""
    plain = re.fullmatch(r"[a-z_][a-z0-9_]*", schema) is not None
    path = f"{schema if plain else psycopg.sql.Identifier(schema).as_string(None)},public"
    # libpq splits options at spaces, unless escaped with a backslash (written \\ itself)
    path = path.replace("\\", "\\\\").replace(" ", "\\ ")
    options = f"{options} -c search_path={path}".strip()
    return make_conninfo(dsn, options=options, application_name=schema)


# -- pytest fixtures ----------------------------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixtures
    pass
else:

    def _test_session(
        conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], request: pytest.FixtureRequest, fixture: str
    ) -> Session:
        """The session a test runs in on *conn*: named after the test (its node id) in messages, and doomed, so
        that it ends rolled back without a `RolledBackError` for an error the test expected."""
        sess = open_session(fixture, conn, None, f"{request.node.nodeid} ({fixture})", DEFAULT_MODE)
        sess.doom()
        return sess

    def _asyncio_fixture(function: Callable[..., Any], name: str) -> Any:
        """*function* as a fixture that pytest-asyncio runs, in its strict mode too, where it is installed."""
        try:
            import pytest_asyncio  # noqa: PLC0415 - optional: the fixture is for its users
        except ImportError:
            return pytest.fixture(function, name=name)
        return pytest_asyncio.fixture(function, name=name)

    @pytest.fixture(scope="session")
    def pg_server_dsn() -> Iterator[str]:
        """The DSN of the server tests run against: ``$PGDECOR_TEST_DSN`` or a throwaway one."""
        given = os.environ.get(DSN_ENV)
        if given:
            check_conninfo(f"${DSN_ENV}", given)
            yield given
            return
        with TemporaryServer() as server:
            yield server.dsn

    @pytest.fixture
    def pg_dsn(pg_server_dsn: str) -> Iterator[str]:
        """A DSN whose search_path starts with a new empty schema, dropped (with its contents) after the test."""
        schema = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(schema)))
        try:
            yield schema_dsn(pg_server_dsn, schema)
        finally:
            with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
                conn.execute(psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(psycopg.sql.Identifier(schema)))

    @pytest.fixture
    def pg_exec(pg_dsn: str) -> Callable[..., list[tuple[Any, ...]]]:
        """Run SQL in the test's schema, committed at once; returns the rows, if any."""

        def run(query: Any, params: Any = None) -> list[tuple[Any, ...]]:
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                cur = conn.execute(query, params)
                return cur.fetchall() if cur.description is not None else []

        return run

    @pytest.fixture
    def pg_transaction(pg_server_dsn: str, request: pytest.FixtureRequest) -> Iterator[psycopg.Connection[Any]]:
        """A connection in a transaction that is rolled back after the test, with a session open on it while the
        test runs. Stubs the test calls run in that session; a session the code under test opens on the same
        connection (``session(pg_transaction)``) joins it. Nothing they write outlives the test, whether it
        passes or fails, and no schema is created or dropped for it: create the schema once for the run (see the
        module docstring), and every test starts from it.

        The session always ends rolled back, without raising: a test that expects a database error
        (``pytest.raises(psycopg.errors.UniqueViolation)``) passes, though the error aborted the transaction.
        Sessions on another source (a `Database`, a pool, a DSN) borrow connections of their own: what they commit
        stays. Async tests and stubs: `apg_transaction`."""
        with (
            psycopg.connect(pg_server_dsn) as conn,
            conn.transaction(force_rollback=True),
            _test_session(conn, request, "pg_transaction"),
        ):
            yield conn

    @pytest.fixture
    def apg_transaction(request: pytest.FixtureRequest) -> psycopg.AsyncConnection[Any]:
        """`pg_transaction` for async tests: an ``AsyncConnection`` in a transaction rolled back after the test,
        with an async session open on it while the test runs, for async stubs (``async def``) and for
        ``async with session(apg_transaction)`` in the code under test. Like `pg_transaction`'s, the session ends
        rolled back without raising.

        The plugin that runs the test runs the fixture too, in the test's event loop, and the session reaches the
        test: anyio's (``@pytest.mark.anyio``, on its asyncio backend) or pytest-asyncio's (1.1 or later,
        ``@pytest.mark.asyncio`` or its auto mode)."""
        anyio = "anyio_backend" in request.fixturenames
        if not anyio and not request.config.pluginmanager.has_plugin("asyncio"):
            msg = (
                f"{request.node.nodeid} uses apg_transaction, which runs in the test's event loop: mark the test "
                f"@pytest.mark.anyio (anyio's pytest plugin), or run it under pytest-asyncio"
            )
            pytest.fail(msg, pytrace=False)
        conn: psycopg.AsyncConnection[Any] = request.getfixturevalue(
            "_apg_transaction_anyio" if anyio else "_apg_transaction_asyncio"
        )
        return conn

    def _apg_transaction() -> Callable[..., AsyncIterator[psycopg.AsyncConnection[Any]]]:
        """The async fixture's function, a new one at each call: what one plugin marks as its own, the other's
        copy does not carry."""

        async def fixture(
            pg_server_dsn: str, request: pytest.FixtureRequest
        ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
            async with (
                await psycopg.AsyncConnection.connect(pg_server_dsn) as conn,
                conn.transaction(force_rollback=True),
                _test_session(conn, request, "apg_transaction"),
            ):
                yield conn

        return fixture

    # One fixture for each plugin that runs async tests, so that the other never takes it: anyio's takes the async
    # fixtures of its tests; pytest-asyncio's, in its strict mode, those its own decorator marks.
    _apg_transaction_anyio = pytest.fixture(_apg_transaction(), name="_apg_transaction_anyio")
    _apg_transaction_asyncio = _asyncio_fixture(_apg_transaction(), "_apg_transaction_asyncio")


def assert_stubs_match(modules: list[str], source: str | psycopg.Connection[Any]) -> None:
    """Fail with one line per problem unless every stub of *modules* matches the database at *source*::

    def test_stubs_match_the_database(pg_server_dsn):
        assert_stubs_match(["app.db"], pg_server_dsn)
    """
    from ._cli.check import check  # noqa: PLC0415 - the checker imports the whole package

    problems = check(modules, source)
    if problems:
        raise AssertionError("stubs do not match the database:\n" + "\n".join(map(str, problems)))
