"""A lease: one connection a session borrowed from its source (any kind: see `_sources.source.Source`).
Borrowing it makes ready the session's transaction; the session's calls use its cursors and its wire; ending it
commits or rolls back; giving it back returns the connection to its source.

A connection borrowed in autocommit and idle (a `Database`'s, a pool's made by pgdecor) is taken out of autocommit
for the session instead of sent a BEGIN: the transaction begins with the session's first statement, in the same
round trip (with a cursor's statement in one pipeline of psycopg's, `_session.begin_async`; with the wire's in a
pipeline of its own, see `_wire.wire_async`); COMMIT or ROLLBACK end it, and a session that sent nothing sends
neither. Where the server must be in the transaction before anything else is sent (a savepoint of `transaction()`,
the connection handed to the user), `begun` sends the BEGIN first.

This is the async source; `_session.lease` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import contextlib
import logging
from time import monotonic
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, AsyncCursor, AsyncServerCursor, AsyncTransaction, IsolationLevel, pq
from psycopg.abc import Loader
from psycopg.rows import TupleRow, tuple_row

from pgdecor._errors import ArgumentError, CommitUnknownError, RolledBackError
from pgdecor._rows.loaders import fetches_binary, parsing_loaders
from pgdecor._rows.registry import ServerKey, server_key
from pgdecor._sources import probe_async as probe
from pgdecor._sources.config import OWING
from pgdecor._sources.replicas import WAL_POSITION
from pgdecor._sources.source import Source
from pgdecor._wire import liveness_async as liveness
from pgdecor._wire import owed
from pgdecor._wire.shield import finish
from pgdecor._wire.wire import usable as wire_usable
from pgdecor._wire.wire_async import AsyncWire

from .modes import DEFAULT_MODE, Mode

__all__ = ["AsyncLease"]

logger = logging.getLogger("pgdecor")

_ROLLBACK = RolledBackError("the session rolls back")
_UNKNOWN = "the connection was lost while the session's COMMIT was under way"

#: What the server says when it ends a connection (as a failover or a restart does): class 08 aside.
_ENDED = frozenset({"57P01", "57P02", "57P03"})
_IDLE = pq.TransactionStatus.IDLE
_INTRANS = pq.TransactionStatus.INTRANS
_OK = pq.ConnStatus.OK
_BEGUN = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)
C = TypeVar("C", AsyncCursor[TupleRow], AsyncServerCursor[TupleRow])


#: A connection's isolation level and read-only setting, as they were before a session's mode changed them.
Restore = tuple[IsolationLevel | None, bool | None] | None


class AsyncLease:
    """One borrowed connection and the transaction begun on it (see the module docstring)."""

    __slots__ = (
        "_cursors",
        "_guard",
        "_implicit",
        "_loaders",
        "_restore",
        "_wire",
        "binary",
        "conn",
        "key",
        "owing",
        "savepoints",
        "source",
        "tx",
    )

    def __init__(
        self,
        source: Source,
        conn: AsyncConnection[Any],
        tx: AsyncTransaction | None,
        restore: Restore = None,
        *,
        implicit: bool = False,
    ) -> None:
        self.source = source
        self.conn = conn
        #: The session's transaction; None in autocommit, where each call is a transaction of its own.
        self.tx = tx
        #: Whether the transaction is the connection's own, begun with the first statement (the connection out of
        #: autocommit meanwhile), rather than *tx* entered.
        self._implicit = implicit
        #: A savepoint of psycopg's around what the user does with the connection of an implicit transaction that
        #: had begun when it was handed out: psycopg then refuses a COMMIT of theirs, as in its transaction blocks.
        self._guard: AsyncTransaction | None = None
        #: The connection's own isolation level and read-only setting, to put back before it is given back, when
        #: the session's mode changed them for its BEGIN.
        self._restore = restore
        #: The server the connection reaches: what calls learn of functions and types is per server.
        self.key: ServerKey = server_key(conn)
        #: The client-side cursors of the session's calls, one fetching binary results, one text: a cursor is
        #: cheap to reuse and costly to make on every call.
        self._cursors: dict[bool, AsyncCursor[TupleRow]] = {}
        self._wire: AsyncWire | None = None
        #: The savepoints of `transaction()` blocks open on the connection: a call inside one takes no other call
        #: into its round trip (`AsyncWire.join`), which the savepoint's rollback would undo with it.
        self.savepoints = 0
        #: Whether the connection may still owe the check its borrow left to the first statement (`_wire.owed`): a
        #: statement that no BEGIN goes with has it made first (`settle`).
        self.owing = False
        #: Whether the connection's cursors fetch binary results, and the loaders its cursors need to load every
        #: built-in type as psycopg does (see `_rows.loaders`): only a connection of the user's may differ.
        self.binary = True
        self._loaders: list[tuple[int, type[Loader]]] = []
        if source.lent:
            self.binary = fetches_binary(conn)
            self._loaders = parsing_loaders(conn.adapters)

    @classmethod
    async def borrow(
        cls, source: Source, mode: Mode = DEFAULT_MODE, within: float | None = None, *, owing: bool = False
    ) -> AsyncLease:
        """A connection from *source* (within *within* seconds, if given), its transaction begun as *mode* says.
        *owing*: the borrower is a call, which can pay the connection's check with its first statement (`settle`
        the check before anything else)."""
        token = OWING.set(owing)
        try:
            conn = await source.aconnect(within)
        finally:
            OWING.reset(token)
        lease = await cls.made(source, conn, mode)
        lease.owing = owing and conn.pgconn in owed.owed
        return lease

    async def commit_token(self) -> str | None:
        """Once the session has committed: its token for later sessions (see `_sources.replicas`), sealed with its
        source's key; None where the position cannot be read without beginning a transaction (a connection not
        in autocommit), or at all."""
        conn = self.conn
        if not conn.autocommit or conn.info.transaction_status != _IDLE:
            return None
        try:
            row = await (await conn.execute(WAL_POSITION)).fetchone()
        except psycopg.Error:  # lost after the COMMIT: no token, and the pool replaces the connection
            return None
        return None if row is None else self.source.settings.tokens.seal(str(row[0]), int(row[1]))

    @classmethod
    async def made(cls, source: Source, conn: AsyncConnection[Any], mode: Mode) -> AsyncLease:
        """A lease of *conn*, borrowed from *source*, its transaction made ready as *mode* says (given back, as it
        was, if that fails)."""
        restore: Restore = None
        tx: AsyncTransaction | None = None
        implicit = False
        try:
            restore = await _set_mode(conn, source, mode)
            tx = None if mode.autocommit else AsyncTransaction(conn)
            if tx is not None:
                implicit = conn.autocommit and conn.info.transaction_status == _IDLE
                if implicit:
                    await conn.set_autocommit(False)
                else:
                    await _enter(tx)
            if not source.configured:
                await probe.probe_once(conn)
        except BaseException as err:
            await finish(_undone(source, conn, restore, tx, err, implicit=implicit))  # though cancelled meanwhile
            raise
        return cls(source, conn, tx, restore, implicit=implicit)

    @property
    def pending(self) -> bool:
        """Whether the session's transaction is yet to begin with its first statement (nothing sent so far)."""
        return self._implicit and self.conn.info.transaction_status == _IDLE

    async def settle(self) -> None:
        """Make the check of the connection its borrow left to the call's first statement (see `_wire.owed`), if the
        wire has not paid it, before anything else is sent: a `PoolTimeout`, as the borrow would have raised, if
        the server does not answer by the borrow's deadline."""
        self.owing = False
        debt = owed.owed.pop(self.conn.pgconn, None)
        if debt is not None:
            await finish(liveness.pay(self.conn.pgconn, debt))

    async def begun(self, *, lent: bool = False) -> AsyncConnection[Any]:
        """The lease's connection, its transaction begun on the server: what must follow a BEGIN (a savepoint, the
        user's own statements) is sent only then. *lent*: to the user, whose COMMIT psycopg refuses inside the
        session's transaction (an implicit one under way is guarded by a savepoint)."""
        await self.settle()
        conn = self.conn
        if self.pending:
            assert self.tx is not None
            self._implicit = False
            await conn.set_autocommit(True)
            await _enter(self.tx)
        elif lent and self._implicit and self._guard is None and conn.info.transaction_status == _INTRANS:
            self._guard = AsyncTransaction(conn)
            await _enter(self._guard)
        return conn

    def cursor(self, binary: bool) -> AsyncCursor[TupleRow]:
        """The lease's client-side cursor fetching binary (or text) results."""
        cur = self._cursors.get(binary)
        if cur is None:
            cur = self._cursors[binary] = self._loading(self.conn.cursor(binary=binary, row_factory=tuple_row))
        return cur

    def server_cursor(self, name: str) -> AsyncServerCursor[TupleRow]:
        """A new server-side cursor named *name* (a stream's)."""
        return self._loading(self.conn.cursor(name, row_factory=tuple_row))

    def _loading(self, cur: C) -> C:
        for oid, loader in self._loaders:
            cur.adapters.register_loader(oid, loader)
        return cur

    def wire(self) -> AsyncWire | None:
        """The lease's `Wire`: the path of calls of statements already run once; None while calls cannot take it
        (see `_wire.wire.usable`)."""
        if self._loaders or not wire_usable(self.conn):  # a wire loads with the connection's own loaders
            return None
        wire = self._wire
        if wire is None:
            wire = self._wire = AsyncWire(self.conn)
        return wire

    def wire_made(self) -> AsyncWire | None:
        """The lease's `Wire`, if made: a call reading through it lets those started meanwhile send their statements
        after its own (`AsyncWire.join`), while it is not `usable` for anything else."""
        return self._wire

    def results(self) -> tuple[object, ...]:
        """The last results of the lease's cursors and wire: the leak guard sees activity by their changing."""
        found: list[AsyncCursor[TupleRow] | AsyncWire | None] = [*self._cursors.values(), self._wire]
        return tuple(c.pgresult for c in found if c is not None)

    async def end(
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
        conn = self.conn
        try:
            if not self._implicit:
                await self.tx.__aexit__(exc_type, exc, tb)
            elif conn.pgconn.status != _OK:
                pass  # as psycopg's transaction does: nothing to end on a connection lost
            else:
                await self._end_implicit(exc_type, exc, tb)
        except psycopg.Error as err:
            if exc is None and _lost(err, conn):
                raise CommitUnknownError(_UNKNOWN) from err
            raise
        finally:
            await self._autocommit_again()

    async def _end_implicit(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Commit an implicit transaction, or roll it back on *exc*; its guard (see `begun`) released first."""
        conn = self.conn
        guard, self._guard = self._guard, None
        if guard is not None:
            await guard.__aexit__(exc_type, exc, tb)
        if exc is None:
            await conn.commit()  # nothing sent if nothing began
            return
        try:
            await conn.rollback()
        except psycopg.Error as err:  # as psycopg's transaction does: the block's error is what it raises
            logger.warning("error ignored in rollback of %r: %s", conn, err)

    async def _autocommit_again(self) -> None:
        """Put the connection of an implicit transaction back in autocommit, as its source lent it, once the
        transaction has ended (rolled back here if it has not: a connection lost is its pool's to replace)."""
        if not self._implicit:
            return
        self._implicit = False
        conn = self.conn
        with contextlib.suppress(psycopg.Error):  # closed meanwhile: its pool replaces it
            if conn.info.transaction_status in _BEGUN:
                await conn.rollback()
            await conn.set_autocommit(True)

    async def give_back(self) -> None:
        """Give the connection back to its source (once its transaction has ended)."""
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.close()
        self._cursors = {}
        pgconn = self.conn.pgconn
        owed.owed.pop(pgconn, None)
        owed.returned[pgconn] = monotonic()
        await self._autocommit_again()
        await _restored(self.conn, self._restore)
        await self.source.agive_back(self.conn)


def _lost(err: psycopg.Error, conn: AsyncConnection[Any]) -> bool:
    """Whether *err* says the connection was lost, or ended by the server, rather than answered with an error
    (after which the transaction is known to be rolled back)."""
    state = err.sqlstate or ""
    return conn.broken or conn.closed or state.startswith("08") or state in _ENDED or not state


async def _set_mode(conn: AsyncConnection[Any], source: Source, mode: Mode) -> Restore:
    """Make *conn*'s next BEGIN the one *mode* asks for (psycopg sends the connection's isolation level and
    read-only setting in it); what to restore afterwards. An autocommit session needs a connection in autocommit,
    and a mode with options a connection whose transaction has not begun yet."""
    if mode.autocommit:
        if not conn.autocommit:
            msg = (
                f"session({source.describe()}, autocommit=True): the connection is not in autocommit mode, "
                f"so its calls would run in one transaction; open it with autocommit=True"
            )
            raise ArgumentError(msg)
        return None
    if not mode.sets_begin:
        return None
    if conn.info.transaction_status != _IDLE:
        msg = (
            f"session({source.describe()}, {mode.describe()}): the connection is in a transaction already, "
            f"which began without them; open the session on a connection that is not"
        )
        raise ArgumentError(msg)
    restore = (conn.isolation_level, conn.read_only)
    if mode.isolation is not None:
        await conn.set_isolation_level(mode.isolation)
    if mode.readonly:
        await conn.set_read_only(True)
    return restore


async def _restored(conn: AsyncConnection[Any], restore: Restore) -> None:
    if restore is not None:
        with contextlib.suppress(psycopg.Error):  # a broken connection: its pool replaces it
            await conn.set_isolation_level(restore[0])
            await conn.set_read_only(restore[1])


async def _enter(tx: AsyncTransaction) -> None:
    # BEGIN to its end even if the borrower is cancelled meanwhile: cut short, psycopg would close the connection
    # (and the pool replace it)
    await finish(tx.__aenter__(), statement_on=tx.connection)


async def _undone(
    source: Source,
    conn: AsyncConnection[Any],
    restore: Restore,
    tx: AsyncTransaction | None,
    err: BaseException,
    *,
    implicit: bool,
) -> None:
    """Give back *conn*, which a lease being made had borrowed and *err* stopped, as it was."""
    with contextlib.suppress(psycopg.Error):  # broken meanwhile: its pool replaces it
        if conn.info.transaction_status in _BEGUN:  # begun before the borrower was cancelled
            if implicit:
                await conn.rollback()
            elif tx is not None:
                await tx.__aexit__(type(err), err, err.__traceback__)
        if implicit and conn.info.transaction_status == _IDLE:
            await conn.set_autocommit(True)
    await _restored(conn, restore)
    await source.agive_back(conn)
