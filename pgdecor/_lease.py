# Generated from pgdecor/_lease_async.py by tools/async_to_sync.py: do not edit; edit the source and run the tool.
"""The sync twin of `pgdecor._lease_async`, generated from it: see there."""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Any

import psycopg
from psycopg import Connection, Cursor, Transaction, pq
from psycopg.rows import TupleRow, tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from . import _leaks as leaks
from . import _probe as probe
from ._database import IDLE_IN_TRANSACTION_TIMEOUT, DatabaseBase, network_defaults, where
from ._errors import ArgumentError, RolledBackError, add_note
from ._modes import DEFAULT_MODE, Mode
from ._pools import Pools
from ._registry import ServerKey, server_key
from ._replay import CAUGHT_UP, WAL_POSITION, waits
from ._retries import pause
from ._sources import Source, describe_source, own_pool
from ._wire import Wire
from ._wire import usable as wire_usable

__all__ = ["Lease", "reap"]

_ROLLBACK = RolledBackError("the session rolls back")
_IDLE = pq.TransactionStatus.IDLE

_GONE = "its thread ended, or it stayed idle in transaction past the leak timeout"


#: A connection's isolation level and read-only setting, as they were before a session's mode changed them.
Restore = tuple[Any, Any] | None


class Lease:
    """One borrowed connection and the transaction begun on it (see the module docstring)."""

    __slots__ = ("_cursors", "_restore", "_wire", "conn", "key", "source", "tx")

    def __init__(self, source: Source, conn: Connection[Any], tx: Transaction | None, restore: Restore = None) -> None:
        self.source = source
        self.conn = conn
        #: The session's transaction; None in autocommit, where each call is a transaction of its own.
        self.tx = tx
        #: The connection's own isolation level and read-only setting, to put back before it is given back, when
        #: the session's mode changed them for its BEGIN.
        self._restore = restore
        #: The server the connection reaches: what calls learn of functions and types is per server.
        self.key: ServerKey = server_key(conn)
        #: The client-side cursors of the session's calls, one fetching binary results, one text: a cursor is
        #: cheap to reuse and costly to make on every call.
        self._cursors: dict[bool, Cursor[TupleRow]] = {}
        self._wire: Wire | None = None

    @classmethod
    def borrow(cls, source: Source, mode: Mode = DEFAULT_MODE) -> Lease:
        """A connection from *source*, its transaction begun as *mode* says, once the orphans on a pool have been
        ended."""
        return cls._begun(source, _connected(source), mode)

    @classmethod
    def borrow_replayed(cls, source: Source, mode: Mode, token: str, bound: float) -> tuple[Lease | None, bool]:
        """`borrow` from the replica *source* once it has replayed past *token* (see `_replay`), waiting up to
        *bound* seconds, and before its transaction begins (whose snapshot must see that far); None, the connection
        given back, if it has not by then. Also whether it had to wait."""
        conn = _connected(source)
        try:
            replayed, waited = _replayed(conn, token, bound)
        except BaseException:
            _give_back(source, conn)
            raise
        if not replayed:
            _give_back(source, conn)
            return None, waited
        return cls._begun(source, conn, mode), waited

    def wal_position(self) -> str | None:
        """Once the session has committed: the primary's write-ahead log position, its COMMIT in it (a token for
        later sessions: see `_replay`); None where it cannot be read without beginning a transaction (a connection
        not in autocommit), or at all."""
        conn = self.conn
        if not conn.autocommit or conn.info.transaction_status != _IDLE:
            return None
        try:
            row = (conn.execute(WAL_POSITION)).fetchone()
        except psycopg.Error:  # lost after the COMMIT: no token, and the pool replaces the connection
            return None
        return None if row is None else str(row[0])

    @classmethod
    def _begun(cls, source: Source, conn: Connection[Any], mode: Mode) -> Lease:
        restore: Restore = None
        try:
            restore = _set_mode(conn, source, mode)
            tx = None if mode.autocommit else Transaction(conn)
            if tx is not None:
                tx.__enter__()
            if not isinstance(source, (str, DatabaseBase)):
                probe.probe_once(conn)
        except BaseException:
            _restored(conn, restore)
            _give_back(source, conn)
            raise
        return cls(source, conn, tx, restore)

    def cursor(self, binary: bool) -> Cursor[TupleRow]:
        """The lease's client-side cursor fetching binary (or text) results."""
        cur = self._cursors.get(binary)
        if cur is None:
            cur = self._cursors[binary] = self.conn.cursor(binary=binary, row_factory=tuple_row)
        return cur

    def wire(self) -> Wire | None:
        """The lease's `Wire`: the path of calls of statements already run once; None while calls cannot take it
        (see `_wire.usable`)."""
        if not wire_usable(self.conn):
            return None
        wire = self._wire
        if wire is None:
            wire = self._wire = Wire(self.conn)
        return wire

    def results(self) -> tuple[object, ...]:
        """The last results of the lease's cursors and wire: the leak guard sees activity by their changing."""
        found: list[Any] = [*self._cursors.values(), self._wire]
        return tuple(c.pgresult for c in found if c is not None)

    def end(
        self,
        rollback: bool,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        """End the session's transaction: rolled back on the block's exception *exc*, or if *rollback*."""
        if self.tx is None:  # autocommit: each call ended its own transaction
            return
        if exc is None and rollback:
            exc_type, exc = RolledBackError, _ROLLBACK
        self.tx.__exit__(exc_type, exc, tb)

    def give_back(self) -> None:
        """Give the connection back to its source (once its transaction has ended)."""
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.close()
        self._cursors = {}
        _restored(self.conn, self._restore)
        _give_back(self.source, self.conn)


def _set_mode(conn: Connection[Any], source: Source, mode: Mode) -> Restore:
    """Make *conn*'s next BEGIN the one *mode* asks for (psycopg sends the connection's isolation level and
    read-only setting in it); what to restore afterwards. An autocommit session needs a connection in autocommit,
    and a mode with options a connection whose transaction has not begun yet."""
    if mode.autocommit:
        if not conn.autocommit:
            msg = (
                f"session({describe_source(source)}, autocommit=True): the connection is not in autocommit mode, "
                f"so its calls would run in one transaction; open it with autocommit=True"
            )
            raise ArgumentError(msg)
        return None
    if not mode.sets_begin:
        return None
    if conn.info.transaction_status != _IDLE:
        msg = (
            f"session({describe_source(source)}, {mode.describe()}): the connection is in a transaction already, "
            f"which began without them; open the session on a connection that is not"
        )
        raise ArgumentError(msg)
    restore = (conn.isolation_level, conn.read_only)
    if mode.isolation is not None:
        conn.set_isolation_level(mode.isolation)
    if mode.readonly:
        conn.set_read_only(True)
    return restore


def _restored(conn: Connection[Any], restore: Restore) -> None:
    if restore is not None:
        with contextlib.suppress(psycopg.Error):  # a broken connection: its pool replaces it
            conn.set_isolation_level(restore[0])
            conn.set_read_only(restore[1])


def _connected(source: Source) -> Connection[Any]:
    """*source* itself (a connection), or a connection from it, its failure noted with where it tried."""
    if isinstance(source, Connection):
        return source
    try:
        return _connect(source)
    except psycopg.OperationalError as err:  # no server there, or it refuses: say where, and what to check
        if not (isinstance(err, PoolTimeout) and isinstance(source, Pools)):  # its pool said why already
            add_note(err, _unreachable(source))
        raise


def _replayed(conn: Connection[Any], token: str, bound: float) -> tuple[bool, bool]:
    """Whether the replica *conn* has replayed past *token*, looking again for up to *bound* seconds; and whether
    it had to look more than once. A connection not in autocommit is not asked (asking would begin its
    transaction): it is taken as behind."""
    if not conn.autocommit:
        return False, False
    for look, delay in enumerate([0.0, *waits(bound)]):
        if delay:
            pause(delay)
        row = (conn.execute(CAUGHT_UP, [token])).fetchone()
        if row is not None and row[0]:
            return True, look > 0
    return False, True


def _connect(source: Source) -> Connection[Any]:
    """A new connection (a conninfo), or one from a pool, once the orphans on it have been ended."""
    if isinstance(source, str):
        conn = Connection.connect(source, autocommit=True, **network_defaults(source, {}))
        probe.configure(conn, IDLE_IN_TRANSACTION_TIMEOUT)
        return conn
    assert isinstance(source, (ConnectionPool, Pools))  # the kinds were checked on entering
    reap(source)
    if isinstance(source, Pools):
        return source._getconn()
    return own_pool(source).getconn()  # type: ignore[no-any-return]


def _unreachable(source: Source) -> str:
    conninfo = source if isinstance(source, str) else getattr(source, "conninfo", "")
    server = where(conninfo) if isinstance(conninfo, str) and conninfo else "its server"
    return (
        f"pgdecor: a session on {describe_source(source)} could not get a connection to {server}; check that the "
        f"server runs there and accepts this connection (host, port, user, password, dbname in the conninfo)"
    )


def _give_back(source: Source, conn: Connection[Any]) -> None:
    if isinstance(source, str):
        conn.close()
    elif isinstance(source, Pools):
        source.pool.putconn(conn)
    elif isinstance(source, ConnectionPool):
        source.putconn(conn)


def reap(source: Source) -> int:
    """Roll back and give back the connections of orphaned sessions on *source*; return how many."""
    orphans = leaks.orphans(source)
    for s in orphans:
        leaks.warn_leak(s, _GONE)
        for lease in s.reaped():
            with contextlib.suppress(psycopg.Error):  # a broken connection: the pool discards it
                lease.end(rollback=True)
            lease.give_back()
    return len(orphans)
