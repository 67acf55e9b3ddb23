# Generated from pgdecor/_channels/connection_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._channels.connection_async`, generated from it: see there."""

from __future__ import annotations

from collections import deque
from time import monotonic
from typing import Any

import psycopg
from psycopg import Connection, pq
from psycopg.rows import tuple_row

from pgdecor._errors import ArgumentError
from pgdecor._run import trace
from pgdecor._sources.config import where
from pgdecor._wire import poolers

from .channel import Missed, Subscription, listen_sql
from .waiter import Waiter

__all__ = ["SilentError", "check", "connect", "read"]

_LIVENESS = b"SELECT 1"
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_BAD = pq.ConnStatus.BAD


class SilentError(Exception):
    """The server did not answer the liveness check in time."""


def connect(
    sub: Subscription, conninfo: str, kwargs: dict[str, Any], items: deque[str | Missed]
) -> tuple[Connection[Any], int]:
    """A new connection listening on the channel, whose notifications' payloads go to *items*, and the pid of its
    server process; `ArgumentError` behind a pooler."""
    traced = trace.start(sub.operation) if trace.settings.on and trace.recording() else None
    conn: Connection[Any] | None = None
    try:
        conn = Connection.connect(conninfo, **kwargs)
        # the items, not the listener: the connection keeps its handler, and nothing may lead back to the listener
        conn.add_notify_handler(lambda n: items.append(n.payload))
        pid = _backend_pid(conn, sub, conninfo)
        conn.execute(listen_sql(sub.channel))
    except BaseException as err:
        if conn is not None:
            conn.close()
        if traced is not None:
            traced.end(None, err)
        raise
    if traced is not None:
        info = conn.info
        traced.end((info.host, str(info.port), info.dbname), None)
    return conn, pid


def _backend_pid(conn: Connection[Any], sub: Subscription, conninfo: str) -> int:
    """The pid of the server process *conn* reaches; `ArgumentError` if a pooler is in between."""
    cur = conn.cursor(row_factory=tuple_row)  # whatever row factory the source's options give connections
    cur.execute(poolers.PROBE)
    row = cur.fetchone()
    assert row is not None
    if poolers.behind_pooler(conn, row[0]):
        raise _behind_pooler(sub, conninfo)
    return int(row[0])


def read(conn: Connection[Any], items: deque[str | Missed]) -> None:
    """Put the payloads of the notifications that came on *conn* in *items*; `OperationalError` if it is broken."""
    pgconn = conn.pgconn
    pgconn.consume_input()
    encoding = conn.info.encoding
    while (notify := pgconn.notifies()) is not None:
        items.append(notify.extra.decode(encoding))
    if pgconn.status == _BAD:
        msg = "the connection is broken"
        raise psycopg.OperationalError(msg)


def check(conn: Connection[Any], items: deque[str | Missed], timeout: float, waiter: Waiter) -> None:
    """``SELECT 1``, answered within *timeout* seconds, or `SilentError`; what notifications come meanwhile are put
    in *items*. A *waiter* stopped meanwhile ends the check, with no error."""
    pgconn = conn.pgconn
    pgconn.send_query(_LIVENESS)
    deadline = monotonic() + timeout
    while True:
        if pgconn.flush() == 0 and not pgconn.is_busy():
            res = pgconn.get_result()
            if res is None:
                break
            if res.status != _TUPLES_OK:
                message = (res.error_message or b"").decode(errors="replace").strip()
                msg = f"the liveness check failed: {message or pq.ExecStatus(res.status).name}"
                raise SilentError(msg)
            continue
        remaining = deadline - monotonic()
        if remaining <= 0 or not waiter.wait(conn.fileno(), remaining):
            if waiter.stopped:
                return
            msg = f"the server did not answer a liveness check (SELECT 1) within {timeout:g} s"
            raise SilentError(msg)
        read(conn, items)
    read(conn, items)


def _behind_pooler(sub: Subscription, conninfo: str) -> ArgumentError:
    msg = (
        f"{sub.stub}: {where(conninfo)} reaches the server through a connection pooler (the "
        f"backend pid it gave is not the server's), which may hand this connection's statements to any of its "
        f"server connections: LISTEN would be left on one of them, and its notifications would go to whichever "
        f"client has it next. Give the listener the server's own address (its host and port, not the "
        f"pooler's); sessions can keep using the pooler"
    )
    return ArgumentError(msg)
