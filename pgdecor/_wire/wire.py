# Generated from pgdecor/_wire/wire_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._wire.wire_async`, generated from it: see there."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from psycopg import Connection, pq
from psycopg.rows import tuple_row
from typing_extensions import Self

from . import batch, internals, owed, poolers
from .fallback import read_after
from .generators import BatchRead, ChunksRead, Reading, chunks, executions, rest, results
from .guard import _PREPARED_BY_NAME, _PROBE, _PROBE_ARGS, _probe_result, _self_test_problem, switch, usable
from .internals import Drift
from .liveness import answered, pay
from .wire_base import CHUNK, CHUNKED_ROWS, FOLDS, BaseWire, begin_for, begun

__all__ = [
    "CHUNK",
    "CHUNKED_ROWS",
    "BatchResults",
    "Chunks",
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

    def execute(self, sql: str, params: Sequence[Any], binary: bool) -> bool:
        """Run *sql* (psycopg placeholders) with *params*, or raise psycopg's error for it; True once its result is
        read (`pgresult`, rows read with `fetchone`, `fetchmany`). False, with nothing sent, when psycopg has not
        prepared the statement for these parameter types (yet, or any more): run it through a cursor with
        ``prepare=True`` then."""
        if not self._tested and not self.self_test():
            return False
        lock = internals.lock(self.conn)
        lock.acquire()
        try:
            begin = begin_for(self.conn)
            if (begin is not None and not FOLDS) or not self._send(sql, params, binary, begin=begin):
                return False
            read = self._wait(results(self.pgconn, self._waits), list) if begin is None else self._read_begun()
        except BaseException:
            self._stopped()
            raise
        finally:
            lock.release()
        self._made(sql, read, binary)
        return True

    def _read_begun(self) -> list[pq.abc.PGresult]:
        """Read what a pipeline of BEGIN, a statement and a Sync gives (`_send` with *begin*), and leave pipeline
        mode: the statement's results, or BEGIN's if it failed. BEGIN's answer pays the check the connection is
        `owed`, if it is: by its deadline, else the connection is closed and the borrow's `PoolTimeout` raised."""
        pgconn = self.pgconn
        if (debt := owed.owed.pop(pgconn, None)) is not None:
            answered(pgconn, debt)
        read = BatchRead(3)
        while not read.done:
            self._wait(executions(pgconn, read, self._waits), list)
        pgconn.exit_pipeline_mode()
        return begun(read.groups)

    def _stopped(self) -> None:
        """After a call raised or was cancelled while its statement was under way: stop it on the server (async:
        psycopg's sync wait does that itself on Ctrl-C) and read what is left, then leave the pipeline it may have
        been read in; a connection that cannot leave it is closed, for its pool to replace."""
        pgconn = self.pgconn
        if pgconn.status == _CONNECTION_OK and pgconn.pipeline_status != _PIPELINE_OFF:
            try:
                pgconn.exit_pipeline_mode()
            except psycopg.OperationalError:  # results left unread
                pgconn.finish()

    def execute_chunked(self, sql: str, params: Sequence[Any], binary: bool) -> Chunks:
        """As `execute`, with the rows read in chunks of `CHUNK` as they come (`Chunks`), for the caller to
        make values of each while the server sends the rest. Only where `CHUNKED_ROWS`."""
        return Chunks(self, sql, params, binary)

    def execute_many(self, sql: str, paramsets: Sequence[Sequence[Any]], binary: bool) -> BatchResults:
        """Run *sql* once per parameter set, pipelined: every execution of psycopg's prepared statement sent at once,
        then one Sync, in one round trip; its results read as they come (`BatchResults`), for the caller to
        make values of each while the server works on the next ones."""
        return BatchResults(self, sql, paramsets, binary)

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
        if (debt := owed.owed.pop(self.pgconn, None)) is not None:  # the test's statements are sent first
            pay(self.pgconn, debt)
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


class _Read:
    """What a chunked read and a batch through a wire share. Entered, it sends the statement (or the batch) in a
    pipeline of its own, under the connection's lock, and gives itself, or None, with nothing sent, where psycopg
    has not prepared what it runs: run it through a cursor then. Iterated, it gives what came, a list at a time,
    reading only what is in and what the next list waits for: the caller makes values of one list while the server
    sends the next. It ends with psycopg's error for a statement that failed, once everything is read; so that the
    connection goes on serving the session, a caller that cannot make a value keeps its error, reads on, and raises
    it at the end. Left, it reads what is left (the statement stopped on the server first where the read was cut
    short by a cancellation), then leaves the pipeline and releases the lock."""

    __slots__ = ("_binary", "_debt", "_lock", "_sql", "wire")

    def __init__(self, wire: Wire, sql: str, binary: bool) -> None:
        self.wire, self._sql, self._binary = wire, sql, binary
        self._lock: Any = None
        #: The check the connection is owed, paid by the answer to the BEGIN sent first (see `_wire.owed`).
        self._debt: owed.Owed | None = None

    def _sent(self) -> bool:
        """Send what is read (in pipeline mode), unless psycopg has not prepared it: whether it was sent."""
        raise NotImplementedError

    def _done(self) -> bool:
        """Whether everything sent has been read, up to the pipeline's Sync."""
        raise NotImplementedError

    def _ended(self) -> None:
        """Once the read is over, or left."""

    def __enter__(self) -> Self | None:
        wire = self.wire
        if not wire._tested and not wire.self_test():
            return None
        lock = internals.lock(wire.conn)
        lock.acquire()
        try:
            sent = self._sent()
            if sent and self._debt is not None:
                answered(wire.pgconn, self._debt)
        except BaseException:
            try:
                wire._stopped()  # a send that failed, or a check unanswered: what is raised is its error
            finally:
                lock.release()
            raise
        if not sent:
            lock.release()
            return None
        self._lock = lock
        return self

    def __iter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        lock, self._lock = self._lock, None
        if lock is None:  # nothing was sent
            return
        pgconn = self.wire.pgconn
        try:
            if not self._done() and pgconn.status == _CONNECTION_OK:
                self.wire._rest()
        finally:
            try:
                if pgconn.status == _CONNECTION_OK:  # not if the fallback, or the stop, closed it
                    pgconn.exit_pipeline_mode()
            finally:
                lock.release()
                self._ended()


class Chunks(_Read):
    """A statement's rows read through a wire in chunks of `CHUNK` as they come (`Wire.execute_chunked`): each list
    the chunks that came (`BaseWire.use_chunk` reads one); then `end`, the result that ends the rows (none of them
    in it: it has the columns only). While the caller makes values of the chunks given, the cyclic garbage
    collector is paused (see `generators.ChunksRead`)."""

    __slots__ = ("_params", "_read", "end")

    def __init__(self, wire: Wire, sql: str, params: Sequence[Any], binary: bool) -> None:
        super().__init__(wire, sql, binary)
        self._params = params
        self._read = ChunksRead()
        self.end: pq.abc.PGresult | None = None

    def _sent(self) -> bool:
        # A transaction to begin first: through a cursor, which sends the BEGIN
        if begin_for(self.wire.conn) is not None:
            return False
        return self.wire._send(self._sql, self._params, self._binary, chunked=True)

    def _done(self) -> bool:
        return self._read.done

    def _ended(self) -> None:
        self._read.resume()

    def __next__(self) -> list[pq.abc.PGresult]:
        read, wire = self._read, self.wire
        if not read.done:
            ready = wire._wait(chunks(wire.pgconn, read, wire._waits), list)
            if ready:
                return ready
        read.resume()
        if self.end is None:
            self.end = wire._chunked_result(self._sql, read, self._binary)
        raise StopIteration


class BatchResults(_Read):
    """A batch's results read through a wire as they come (`Wire.execute_many`): each list the executions whose
    results came, as their index and their result, where they succeeded (`BaseWire.use` reads one); then
    `results`, one per execution. Nothing is sent unless psycopg has prepared the statement for every parameter
    set's types."""

    __slots__ = ("_paramsets", "_read", "results")

    def __init__(self, wire: Wire, sql: str, paramsets: Sequence[Sequence[Any]], binary: bool) -> None:
        super().__init__(wire, sql, binary)
        self._paramsets = paramsets
        self._read = BatchRead(len(paramsets) + 1)
        self.results: list[pq.abc.PGresult] = []

    def _sent(self) -> bool:
        wire = self.wire
        pgconn = wire.pgconn
        begin = begin_for(wire.conn)
        sends = None if begin is not None and not FOLDS else batch.prepared(wire, self._sql, self._paramsets)
        if sends is None:
            return False
        pgconn.enter_pipeline_mode()
        if begin is not None:  # the transaction begins with the batch, in its pipeline
            pgconn.send_query_params(begin, None)
            self._read.begin = True
            if (debt := owed.owed.pop(pgconn, None)) is not None:
                pgconn.send_flush_request()
                self._debt = debt
        batch.send(pgconn, sends, self._binary)
        return True

    def _done(self) -> bool:
        return self._read.done

    def __next__(self) -> list[tuple[int, pq.abc.PGresult]]:
        read, wire = self._read, self.wire
        if read.done:
            raise StopIteration
        ready = wire._wait(executions(wire.pgconn, read, wire._waits), list)
        if read.done:
            self.results = batch.results(wire, self._sql, read)
            if not ready:
                raise StopIteration
        return ready
