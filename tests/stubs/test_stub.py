"""What `procedure` and `query` return: a stub's `.sql`, read from its plan."""

import copy
import inspect
import pickle
import uuid
from collections.abc import Iterator
from types import MethodType

import psycopg
import pytest
from psycopg import sql

from pgdecor import procedure, session
from pgdecor.testing import schema_dsn
from tests.fix_db import Exec
from tests.usercode import userdb
from tests.usercode.models import Member

#: The function a stub calls, its argument's type differing between the two search paths.
LABEL = "CREATE FUNCTION label(n {}) RETURNS text LANGUAGE sql AS $$ SELECT 'n=' || n $$"


@pytest.fixture
def other_dsn(pg_server_dsn: str) -> Iterator[str]:
    """A DSN whose search_path starts with a second schema, where `label` takes a bigint: another server for
    pgdecor, whose catalog facts are kept per database and connection options."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        with psycopg.connect(schema_dsn(pg_server_dsn, schema), autocommit=True) as conn:
            conn.execute(sql.SQL(LABEL).format(sql.SQL("bigint")))
        yield schema_dsn(pg_server_dsn, schema)
    finally:
        with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_function_stub_sql_is_the_statement_composed_for_the_server_called_last(
    pg_dsn: str, pg_exec: Exec, other_dsn: str
) -> None:
    """A function stub's `.sql` is None until its first call, then the statement composed for the server of that
    call, and another server's once a call has composed one there."""
    pg_exec(sql.SQL(LABEL).format(sql.SQL("integer")))

    @procedure
    def label(n: int) -> str: ...

    assert label.sql is None
    with session(pg_dsn):
        assert label(1) == "n=1"
    assert label.sql == 'SELECT "label"("n" => %b::integer)'
    with session(other_dsn):
        assert label(2) == "n=2"
    assert label.sql == 'SELECT "label"("n" => %b::bigint)'


def test_stub_is_used_as_a_function_is() -> None:
    """A stub keeps what its users do with a function: its names and signature, pickling and copying by name, an
    async one seen as a coroutine function, and one defined in a class bound as a method."""
    assert (userdb.get_user.__module__, userdb.get_user.__qualname__) == ("tests.usercode.userdb", "get_user")
    assert str(inspect.signature(userdb.get_user)) == "(id: 'int') -> 'User | None'"
    assert pickle.loads(pickle.dumps(userdb.get_user)) is userdb.get_user  # noqa: S301 - our own bytes
    assert copy.deepcopy(userdb.get_user) is userdb.get_user
    assert pickle.loads(pickle.dumps(Member.rename)) is Member.rename  # noqa: S301 - our own bytes
    assert inspect.iscoroutinefunction(userdb.aget_user)
    assert not inspect.iscoroutinefunction(userdb.get_user)
    bound = Member(1, "ann", None).rename
    assert isinstance(bound, MethodType)
    assert bound.__self__ == Member(1, "ann", None)
    assert bound.__func__ is Member.rename
