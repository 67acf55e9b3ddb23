"""The parts of psycopg that are not its documented API, on which pgdecor's lean call path (`_wire`) and its
pooler guard (`_poolers`) rely, pinned by what they do: a psycopg release that changes one fails here, by name,
rather than somewhere in a stub's call."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import generators, waiting
from psycopg._queries import _query2pg
from psycopg.adapt import PyFormat, Transformer


def test_placeholders_convert_to_numbered_parameters_with_their_formats() -> None:
    query, formats, *_ = _query2pg(b"SELECT %s, %b, %t, '%%'", "utf-8")
    assert query == b"SELECT $1, $2, $3, '%'"
    assert formats == [PyFormat.AUTO, PyFormat.BINARY, PyFormat.TEXT]


def test_prepared_statements_are_named_by_query_and_types(users: str) -> None:
    """The prepare manager keeps ``(query, types) -> name``, names ``_pg3_<n>`` from ``_prepared_idx``, and the name
    is the server's prepared statement."""
    with psycopg.connect(users) as conn:
        manager: Any = conn._prepared
        assert isinstance(manager._prepared_idx, int)
        first = manager._prepared_idx
        cur = conn.cursor()
        cur.execute("SELECT %b::int", [1], prepare=True)
        query, _, *_ = _query2pg(b"SELECT %b::int", "utf-8")
        tx = Transformer(conn)
        tx.dump_sequence([1], [PyFormat.BINARY])
        name = manager._names[(query, tx.types or ())]
        assert name == f"_pg3_{first}".encode()
        assert manager.prepare_threshold == conn.prepare_threshold
        server = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
        assert (name.decode(),) in server
        manager.clear()
        assert manager._names == {}


def test_the_execute_generator_runs_on_the_connections_wait(users: str) -> None:
    """``conn.wait(generators.execute(pgconn))`` reads every result of a query sent through libpq."""
    with psycopg.connect(users, autocommit=True) as conn:
        conn.pgconn.send_query_params(b"SELECT $1::int + 1", [b"41"], [23], [0], 0)
        results = conn.wait(generators.execute(conn.pgconn))
        assert [r.get_value(0, 0) for r in results] == [b"42"]
    assert callable(waiting.wait_async)
