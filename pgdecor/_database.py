"""What a `Database` is below its sessions: its configuration, its counters, and what both halves of its pools
(`_pools_async.AsyncPools` and the generated `_pools.Pools`) share. `pgdecor.Database` itself, which adds
sessions, is in `_service`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, cast

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from typing_extensions import Self

from ._counters import Counters, counters
from ._errors import ArgumentError
from ._replay import REPLICA_WAIT
from ._secrets import described, explained, masked, misread, scrubbed

__all__ = ["IDLE_IN_TRANSACTION_TIMEOUT", "DatabaseBase", "check_conninfo", "counters_for", "where"]

#: Seconds after which the server ends a backend left idle in a transaction, on the connections pgdecor opens
#: itself (conninfo-string sessions; `Database` takes its own value). A backstop, should a leak escape the guard.
IDLE_IN_TRANSACTION_TIMEOUT = 60.0


def check_conninfo(what: str, conninfo: str) -> None:
    """Raise `ArgumentError` unless *conninfo* is a connection string or URI libpq can read (nothing connects).

    The message shows the conninfo's keywords, never its values: libpq's own error may quote any of them.
    """
    __tracebackhide__ = True  # pytest would show the frame's arguments, the conninfo itself among them
    try:
        info = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as err:
        why = explained(str(err).strip(), conninfo)
    except UnicodeDecodeError:  # psycopg's, of a value percent-decoded; the error holds the value's bytes
        why = "a percent-encoded value is not UTF-8"
    else:
        if not misread(conninfo, info):
            return
        msg = (
            f"{what}: {masked(conninfo)!r:.60} has a password with a '/' or '@' written as it is, which libpq "
            f"reads as part of the host, port or database name; write them %2F and %40 in a URI"
        )
        raise ArgumentError(msg)
    msg = (
        f"{what}: {masked(conninfo)!r:.60} is not a connection string libpq can read ({why}); write "
        f"'postgresql://user@host:5432/dbname' or 'host=... dbname=...'"
    )
    raise ArgumentError(msg)  # outside the handler: libpq's error, which quotes the conninfo, is not its context


def where(conninfo: str) -> str:
    """The server a connection string names, for messages: ``host:port/dbname`` (libpq's defaults left out)."""
    info = conninfo_to_dict(conninfo)
    host = info.get("host") or info.get("hostaddr") or "the default socket"
    shown = f"{host}{':' + str(info['port']) if info.get('port') else ''}/{info.get('dbname') or ''}"
    # a password libpq misread (a "/" in it, written as it is) can land in the host, port or dbname
    return scrubbed(shown, conninfo)


def counters_for(source: object) -> Counters:
    return source.counters if isinstance(source, DatabaseBase) else counters


class DatabaseBase:
    """The configuration and state of a `Database` (see there) that its pools use."""

    def __init__(
        self,
        conninfo: str,
        *,
        replica: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        idle_in_transaction_timeout: float | None = IDLE_IN_TRANSACTION_TIMEOUT,
        leak_timeout: float | None = -1.0,
        prepare: bool | None = None,
        check: bool = True,
        replica_wait: float = REPLICA_WAIT,
        **kwargs: Any,
    ) -> None:
        if not isinstance(conninfo, str):
            msg = f"Database() takes a connection string, not {described(conninfo)}"
            raise ArgumentError(msg)
        check_conninfo("Database()", conninfo)
        self.conninfo = conninfo
        self.min_size, self.max_size, self.timeout = min_size, max_size, timeout
        self.idle_in_transaction_timeout = idle_in_transaction_timeout
        self.leak_timeout = idle_in_transaction_timeout if leak_timeout == -1.0 else leak_timeout
        self.prepare = prepare
        self.check = check
        #: Seconds a session given a token waits for the replica to replay that far (see `session`'s ``after``).
        self.replica_wait = replica_wait
        self.kwargs = kwargs
        self.counters = Counters(_parent=counters)
        self.replica: Self | None = (
            None
            if replica is None
            else cast("type[Self]", type(self))(
                replica,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                idle_in_transaction_timeout=idle_in_transaction_timeout,
                leak_timeout=leak_timeout,
                prepare=prepare,
                check=check,
                **kwargs,
            )
        )
        self.is_async = False
        #: Whether the last connection configured was behind a pooler (None: none configured yet).
        self.pooler: bool | None = None
        self._pool: ConnectionPool[Any] | None = None
        self._apool: AsyncConnectionPool[Any] | None = None
        #: The process that opened the pool: a forked child opens its own (see `_fork`).
        self._pid = 0
        self._reopen_lock = threading.Lock()
        self._areopen_lock: tuple[int, asyncio.Lock] | None = None

    def __repr__(self) -> str:
        info = conninfo_to_dict(self.conninfo)
        where = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/{info.get('dbname') or ''}"
        where = scrubbed(where, self.conninfo)  # as in `where`
        state = "open" if self._pool or self._apool else "closed"
        return f"<pgdecor Database {where} ({'async, ' if self.is_async else ''}{state})>"

    def _closed_message(self, how: str) -> str:
        return f"{self!r} is not open for this kind of session; open it with `{how} Database(...)` first"

    def _pool_kwargs(self) -> dict[str, Any]:
        return {
            "min_size": self.min_size,
            "max_size": self.max_size,
            "timeout": self.timeout,
            "kwargs": {"autocommit": True, **self.kwargs},
            "open": False,
        }

    def _reopening(self) -> threading.Lock:
        """What a thread holds while it opens the pool anew in a forked child."""
        return self._reopen_lock

    def _areopening(self) -> asyncio.Lock:
        """What a task holds while it opens the pool anew in a forked child (a lock of this process's own)."""
        pid = os.getpid()
        if self._areopen_lock is None or self._areopen_lock[0] != pid:
            self._areopen_lock = (pid, asyncio.Lock())
        return self._areopen_lock[1]
