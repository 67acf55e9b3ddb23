# Generated from pgdecor/_wire/wire_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._wire.wire_async`, generated from it: see there."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import Connection, pq
from psycopg.rows import tuple_row

from . import internals, owed, poolers
from .fallback import read_after
from .generators import Reading, piped, rest, results
from .guard import _PREPARED_BY_NAME, _PROBE, _PROBE_ARGS, _probe_result, _self_test_problem, switch, usable
from .internals import Drift
from .liveness import answered, settle
from .wire_base import CHUNK, CHUNKED_ROWS, FOLDS, BaseWire, begin_for, begun

__all__ = [
    "CHUNK",
    "CHUNKED_ROWS",
    "Wire",
    "switch",
    "usable",
]

logger = logging.getLogger("pgdecor")

_ACTIVE = pq.TransactionStatus.ACTIVE
_CONNECTION_OK = pq.ConnStatus.OK
_PIPELINE_OFF = pq.PipelineStatus.OFF
T = TypeVar("T")


class Wire(BaseWire):
    """One session's lean path on one connection: what `BaseWire` does, and its waits (`_wait`)."""

    __slots__: tuple[str, ...] = ("conn",)

    def __init__(self, conn: Connection[Any]) -> None:
        super().__init__(conn)
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any], binary: bool, *, joinable: bool = False) -> bool:
        """Run *sql* (psycopg placeholders) with *params*, or raise psycopg's error for it; True once its result is
        read (`pgresult`, rows read with `fetchone`, `fetchmany`). False, with nothing sent, when psycopg has not
        prepared the statement for these parameter types (yet, or any more): run it through a cursor with
        ``prepare=True`` then. *joinable* (an async session's call): others of the session may send their statements
        after it while its result is awaited (`join`): a plain call's, not one in a savepoint of its own."""
        if not self._tested and not self.self_test():
            return False
        lock = internals.lock(self.conn)
        lock.acquire()
        try:
            pgconn = self.pgconn
            begin = begin_for(self.conn)
            # In a pipeline if its BEGIN goes first, or if others' statements may follow it (`join`): an async
            # session's calls only, none of a sync session's runs meanwhile.
            joinable = False
            if begin is None and not joinable:  # the usual call: its statement alone
                if not self._send(sql, params, binary):
                    return False
                read = self._wait(results(pgconn, self._waits), list)
            else:
                in_pipeline = self._piped(sql, params, binary, begin, joinable=joinable)
                if in_pipeline is None:
                    return False
                read = in_pipeline
        except BaseException:
            self._stopped()
            raise
        finally:
            lock.release()
        self._made(sql, read, binary)
        return True

    def _piped(
        self, sql: str, params: Sequence[Any], binary: bool, begin: bytes | None, *, joinable: bool
    ) -> list[pq.abc.PGresult] | None:
        """`execute`'s statement in a pipeline, after its *begin* if due, others' statements after it if *joinable*:
        its results, or None with nothing sent."""
        if begin is not None and not FOLDS:
            return None
        pgconn = self.pgconn
        if begin is not None and pgconn in owed.owed and not owed.light(params, sets=False):
            settle(pgconn)  # a statement slow to send: the check made first, as the pool would have
        if not self._send(sql, params, binary, piped=True, begin=begin):
            return None
        # The pipeline's: the statement's results, or BEGIN's if it failed; BEGIN's answer pays the check the
        # connection is `owed`, if it is: by its deadline, else the connection is closed and the borrow's
        # `PoolTimeout` raised. Then the results of the statements other calls sent after it meanwhile (`join`), for
        # them, and the pipeline left.
        self._open = joinable
        if begin is not None and (debt := owed.owed.pop(pgconn, None)) is not None:
            answered(pgconn, debt)
        groups = self._wait(piped(pgconn, self._waits, 1 if begin is None else 2), list)
        self._open = False
        self._leave()
        return groups[0] if begin is None else begun(groups)

    def _stopped(self) -> None:
        """After a call raised or was cancelled while its statement was under way: stop it on the server (async:
        psycopg's sync wait does that itself on Ctrl-C) and read what is left, then leave the pipeline it may have
        been read in; a connection that cannot leave it is closed, for its pool to replace."""
        self._open = False
        self._leave()

    def _leave(self) -> None:
        """Leave the pipeline the call's statement was sent in, if the connection is still in it; close a connection
        that cannot leave it (results left unread), for its pool to replace."""
        pgconn = self.pgconn
        if pgconn.status == _CONNECTION_OK and pgconn.pipeline_status != _PIPELINE_OFF:
            try:
                pgconn.exit_pipeline_mode()
            except psycopg.OperationalError:
                pgconn.finish()

    # How a wire waits for what its generators read of the statement just sent (under the connection's lock): the
    # one thing the two wires do each their own way.
    def _wait(self, gen: Reading[T], kind: type) -> T:
        """*gen* run on the connection's wait (psycopg's C poll loop, which stops the statement on the server
        on Ctrl-C), and, should that wait raise or return anything but a *kind* (a changed psycopg), on the
        fallback's."""
        try:
            read = internals.wait(self.conn)(gen)
            if type(read) is not kind:
                raise Drift("psycopg.Connection.wait", TypeError(f"it gave {type(read).__name__}"))  # noqa: TRY301
        except psycopg.Error:
            raise
        except Exception as err:  # noqa: BLE001 - psycopg's wait, changed: our generator, driven by us
            return read_after(self.pgconn, err, "psycopg.Connection.wait", gen, probing=self._probing)
        return read

    def _rest(self) -> None:
        """Read what is left of the statements sent (`generators.rest`), and drop it."""
        self._wait(rest(self.pgconn, self._waits), type(None))

    def self_test(self) -> bool:
        """Before the first call through a connection's wire: check that it does what psycopg would, by running a
        statement psycopg has prepared through the wire and comparing the result with the cursor's, inside a
        savepoint (a failure leaves the session's transaction as it was). On any difference, wires are turned
        off for the process: calls then go through cursors. A database error (a pooler that loses prepared
        statements) only keeps this wire unused. Return whether this wire may be used. The async wire's runs to its
        end though the call is cancelled meanwhile (then cancelled after it): a savepoint left half-way would break
        the session's own transaction."""
        return self._self_test()

    def _self_test(self) -> bool:
        if not switch.on:
            return False
        conn = self.conn
        settle(self.pgconn)  # the test's statements are sent first
        try:
            with conn.transaction():
                cur = conn.cursor(binary=True, row_factory=tuple_row)
                cur.execute(_PROBE, _PROBE_ARGS, prepare=True)
                expected = _probe_result(cur.pgresult, cur.fetchall())
                self._tested = self._probing = True  # the probe itself goes through `execute`
                res = self.pgresult if self.execute(_PROBE, _PROBE_ARGS, True) else None
                self._probing = False
                problem = _self_test_problem(expected, None if res is None else _probe_result(res, self.fetchmany(2)))
                if problem is None and self.name is not None and not poolers.behind_pooler_seen(conn):
                    found = conn.execute(_PREPARED_BY_NAME, [self.name.decode()])
                    problem = None if found.fetchone() else f"the server has no prepared statement {self.name!r}"
        except psycopg.Error as err:
            return self._failed_on_server(err)
        except Drift as err:  # the probe's result lost by a changed psycopg (`read_after`): rolled back with it
            return self._drifted_in_test(err)
        except BaseException:  # interrupted: not tested after all
            self._tested = self._probing = False
            raise
        return self._passed(conn, problem)

    def close(self) -> None:
        """Let go of what the wire holds of the connection, before the session gives it back: the async wire's
        watch of its socket; nothing for the sync wire."""
