# Generated from pgdecor/_wire/wire_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._wire.wire_async`, generated from it: see there."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import Connection, pq
from psycopg.rows import tuple_row

from . import batch, internals, owed, poolers
from .batch import Batch
from .fallback import read_after
from .generators import Chunks, Each, Groups, Reading, chunks, groups, results
from .guard import _PREPARED_BY_NAME, _PROBE, _PROBE_ARGS, _probe_result, _self_test_problem, switch, usable
from .internals import Drift
from .liveness import answered, pay
from .wire_base import CHUNK, CHUNKED_ROWS, FOLDS, NOT_SENT, UNMADE, BaseWire, Maker, Makers, begin_for, begun

__all__ = [
    "CHUNK",
    "CHUNKED_ROWS",
    "NOT_SENT",
    "UNMADE",
    "Batch",
    "Each",
    "Maker",
    "Makers",
    "Wire",
    "switch",
    "usable",
]

logger = logging.getLogger("pgdecor")

_ACTIVE = pq.TransactionStatus.ACTIVE
_CONNECTION_OK = pq.ConnStatus.OK
_PIPELINE_OFF = pq.PipelineStatus.OFF
_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
T = TypeVar("T")


class Wire(BaseWire):
    """One session's lean path on one connection: what `BaseWire` does, and its waits (`_wait`)."""

    __slots__: tuple[str, ...] = ("conn",)

    def __init__(self, conn: Connection[Any]) -> None:
        super().__init__(conn)
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any], binary: bool, made: Makers | None = None) -> Any:
        """Run *sql* (psycopg placeholders) with *params*, or raise psycopg's error for it. Its result (`pgresult`)
        becomes the call's value right away if *made* knows its prepared statement (`Maker.make`); else `UNMADE`
        is returned. `NOT_SENT`, with nothing sent, when psycopg has not prepared the statement for these
        parameter types (yet, or any more): run it through a cursor with ``prepare=True`` then."""
        if not self._tested and not self.self_test():
            return NOT_SENT
        lock = internals.lock(self.conn)
        lock.acquire()
        try:
            begin = begin_for(self.conn)
            if (begin is not None and not FOLDS) or not self._send(sql, params, binary, begin=begin):
                return NOT_SENT
            read = self._wait(results(self.pgconn, self._waits), list) if begin is None else self._read_begun()
        except BaseException:
            self._stopped()
            raise
        finally:
            lock.release()
        return self._made(sql, read, binary, made)

    def execute_chunked(
        self, sql: str, params: Sequence[Any], binary: bool, each: Callable[[pq.abc.PGresult], None]
    ) -> pq.abc.PGresult | None:
        """As `execute`, with the rows read in chunks of `CHUNK` as they come: each chunk is handed to *each*
        (`use_chunk` reads it), overlapping the making of values with the server's sending of the rest. Returns the
        result that ends the rows (none of them in it: it has the columns only), or raises psycopg's error, else
        what *each* raised. None, with nothing sent, as `execute` returns `NOT_SENT`. Only where `CHUNKED_ROWS`."""
        if not self._tested and not self.self_test():
            return None
        lock = internals.lock(self.conn)
        lock.acquire()
        try:
            # A transaction to begin first: through a cursor, which sends the BEGIN
            if begin_for(self.conn) is not None or not self._send(sql, params, binary, chunked=True):
                return None
            read = self._wait(chunks(self.pgconn, each, self._waits), Chunks)
        except BaseException:
            self._stopped()
            raise
        finally:
            lock.release()
        return self._chunked_result(sql, read, binary)

    def execute_many(
        self, sql: str, paramsets: Sequence[Sequence[Any]], binary: bool, each: Each | None = None
    ) -> Batch | None:
        """Run *sql* once per parameter set, pipelined: every execution of psycopg's prepared statement sent at once,
        then one Sync, in one round trip. Return the results in order, and what *each* (given an execution's index
        and result, as it comes) made of them; raise psycopg's error for the first execution that failed (the ones
        after it were skipped by the server), or what *each* raised. None, with nothing sent, if psycopg has not
        prepared the statement for every set's parameter types: run them through a cursor's ``executemany`` then."""
        if not self._tested and not self.self_test():
            return None
        pgconn = self.pgconn
        lock = internals.lock(self.conn)
        lock.acquire()
        try:
            begin = begin_for(self.conn)
            sends = None if begin is not None and not FOLDS else batch.prepared(self, sql, paramsets)
            lead, self._partial = self._partial, False
            if sends is None and not lead:
                return None
            pgconn.enter_pipeline_mode()
            if lead:  # the chunked rows mode of the statement before is reset as libpq moves past this Sync
                pgconn.pipeline_sync()
            if sends is None:  # the cursor's pipeline that runs the batch then finds the mode reset
                self._wait(groups(pgconn, 0, None, self._waits, lead=True), Groups)
                _left_pipeline(pgconn)
                return None
            debt = None
            if begin is not None:
                pgconn.send_query_params(begin, None)
                if (debt := owed.owed.pop(pgconn, None)) is not None:
                    pgconn.send_flush_request()
            batch.send(pgconn, sends, binary)
            if debt is not None:  # the check the connection is owed, paid by BEGIN's answer
                answered(pgconn, debt)
            reading = groups(pgconn, len(paramsets) + 1, each, self._waits, lead=lead, begin=begin is not None)
            read = self._wait(reading, Groups)
            _left_pipeline(pgconn)
        except BaseException:
            self._stopped()
            raise
        finally:
            lock.release()
        return batch.results(self, sql, read)

    def _read_begun(self) -> list[pq.abc.PGresult]:
        """Read what a pipeline of BEGIN, a statement and a Sync gives (`_send` with *begin*), and leave pipeline
        mode: the statement's results, or BEGIN's if it failed. BEGIN's answer pays the check the connection is
        `owed`, if it is: by its deadline, else the connection is closed and `ConnectionTimeout` raised."""
        pgconn = self.pgconn
        if (debt := owed.owed.pop(pgconn, None)) is not None:
            answered(pgconn, debt)
        read = self._wait(groups(pgconn, 3, None, self._waits, lead=False), Groups)
        _left_pipeline(pgconn)
        return begun(read.groups)

    def _stopped(self) -> None:
        """After a call raised or was cancelled while its statement was under way: stop it on the server (async:
        psycopg's sync wait does that itself on Ctrl-C), and leave the pipeline it may have been read in; a
        connection that cannot leave it is closed, for its pool to replace."""
        pgconn = self.pgconn
        if pgconn.status == _CONNECTION_OK and pgconn.pipeline_status != _PIPELINE_OFF:
            try:
                pgconn.exit_pipeline_mode()
            except psycopg.OperationalError:  # results left unread
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
        if (debt := owed.owed.pop(self.pgconn, None)) is not None:  # the test's statements are sent first
            pay(self.pgconn, debt)
        try:
            with conn.transaction():
                cur = conn.cursor(binary=True, row_factory=tuple_row)
                cur.execute(_PROBE, _PROBE_ARGS, prepare=True)
                expected = _probe_result(cur.pgresult, cur.fetchall())
                self._tested = self._probing = True  # the probe itself goes through `execute`
                res = None if self.execute(_PROBE, _PROBE_ARGS, True) is NOT_SENT else self.pgresult
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


def _left_pipeline(pgconn: pq.abc.PGconn) -> None:
    """Leave the pipeline a read has read to its end (not if the fallback closed the connection)."""
    if pgconn.status == _CONNECTION_OK:
        pgconn.exit_pipeline_mode()
