"""The per-call path once a statement is known: the prepared statement executed through libpq directly.

psycopg's cursors serve every kind of query; per call `execute` converts the query, consults the prepare manager,
dumps the parameters and keeps the results for fetching, and `AsyncCursor.execute` also registers the socket with
the event loop and unregisters it again (two system calls) under an interrupt-check timer. For a statement pgdecor
has already run through a cursor (so its result layout is known and checked), a `Wire` does only what such a call
needs: dump the parameters with the connection's adapters, execute the statement psycopg prepared for them, and
read its result, with psycopg's own C wait (sync), or watching a duplicate of the socket registered with the event
loop once per session (`AsyncWire`). Measured: ~15% more calls/s than a cursor, ~20% less client CPU.

Everything else stays psycopg's: the prepared statements (a wire only executes those the connection's prepare
manager holds, so they are kept, evicted and discarded by psycopg's rules; when one is missing the call goes
through a cursor asking psycopg to prepare it), the adapters with their dumpers and loaders (`Transformer`), the
error classes, the notice and notification handlers, the connection lock, transactions, and stopping the statement
on the server when the call is interrupted or its task cancelled. A connection in pipeline mode, one whose cursors
a tool wraps (tracing, query logging), and streams keep using cursors. With prepared statements off
(``prepare_threshold = None``, as behind PgBouncer) statements are sent unnamed. A batch (``.many()``) of a prepared
statement is pipelined: every execution sent, then one Sync, its results read as they come. A stub whose last
result was large (`CHUNK` rows or more) has its next one read in chunks as the server sends them (libpq's chunked
rows mode, libpq 17 and later), each made into values while the rest arrives: measured, 100,000 rows into
dataclasses ~1.2x as fast as psycopg's `fetchall` of tuples, which waits for the whole result.

A wire asks psycopg's prepare manager what a cursor would (the statement's name under psycopg's own key) and tells
it of each execution (`PrepareManager.maybe_add_to_cache`, and `validate` for what a command invalidates), so
that psycopg's LRU order and invalidation rules hold as they are, in whichever psycopg is installed; where a
manager of its own shows that all psycopg does for a prepared statement run again is to move it to the recent end
of that order (`_wire_guard.lru_is_a_move`), the wire does just that. A statement's result becomes the stub's
value in one step once its layout is known (`Maker`, kept per prepared statement by the stub's facts). The parts of
psycopg used that are not its documented API (the placeholder conversion, the prepare manager, the connection's
wait and its generators) are looked up in `_internals` alone, pinned by tests/test_psycopg_contract.py, and checked
by what they do before a connection's first call (`Wire.self_test`): on any difference every call goes through
cursors, with one WARNING. Should one of them raise, or answer in another shape, in any call (`Drift`), the same:
wires are off for the process, with one WARNING naming it, and the call is made through a cursor if nothing was
sent yet, or its result read with libpq's public calls if it was (`_read_after`). Never a wrong result; at worst,
a slower one.
"""

from __future__ import annotations

import gc
import inspect
import logging
import selectors
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg import AsyncConnection, Connection, pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import error_from_result
from psycopg.rows import tuple_row

from . import internals, poolers
from .guard import (
    _PREPARED_BY_NAME,
    _PROBE,
    _PROBE_ARGS,
    _probe_result,
    _self_test_problem,
    _tested,
    _turn_off,
    drifted,
    switch,
    usable,
)
from .internals import Drift

__all__ = ["NOT_SENT", "UNMADE", "Maker", "Makers", "Wire", "switch", "usable"]

logger = logging.getLogger("pgdecor")

_OFF = pq.PipelineStatus.OFF
_ACTIVE = pq.TransactionStatus.ACTIVE
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
_TUPLES_CHUNK = getattr(pq.ExecStatus, "TUPLES_CHUNK", -1)
_CONNECTION_OK = pq.ConnStatus.OK
T = TypeVar("T")

#: What `Wire.execute` returns when it sent nothing, and when it has no `Maker` for its result (`Wire.pgresult`).
NOT_SENT = object()
UNMADE = object()


class Maker(Protocol):
    """What a prepared statement's results become for a stub (`_outcome.Made`): *make* turns one into the call's
    value, for results in binary or not; all of them have the columns of *layout*."""

    @property
    def binary(self) -> bool: ...

    @property
    def layout(self) -> object: ...

    @property
    def make(self) -> Callable[[Any, pq.abc.PGresult], Any]: ...


#: (prepare manager, statement name) → its `Maker`, for one stub.
Makers = Mapping[tuple[object, bytes], Maker]

#: Rows turned into values at a time when reading a whole result (see `_outcome.rows`), and the size of the chunks
#: a result is read in as it comes (`Wire.execute_chunked`).
CHUNK = 1000
#: Whether results can be read in chunks as they come (libpq's chunked rows mode: libpq 17 and later).
CHUNKED_ROWS = pq.version() >= 170000 and _TUPLES_CHUNK != -1

#: (SQL, encoding) → the SQL with $n placeholders, and the format each placeholder asks for.
_converted: dict[tuple[str, str], tuple[bytes, list[PyFormat]]] = {}


class _Query:
    """What psycopg's prepare manager keys a statement by (a `PostgresQuery`'s ``query`` and ``types``): one per
    wire, refilled by each call."""

    __slots__ = ("query", "types")

    def __init__(self) -> None:
        self.query = b""
        self.types: tuple[int, ...] = ()


_OK = (_TUPLES_OK, _COMMAND_OK)

#: What makes a value of a batch's result as it comes (given the execution's index), and what a batch returns:
#: the results, and what was made of them.
Each = Callable[[int, pq.abc.PGresult], Any]
Batch = tuple[list[pq.abc.PGresult], list[Any]]

#: What reading a batch gives: each execution's results (then the Sync's), what *each* made of them, and what
#: *each* raised (kept until the pipeline has been read to its end).
Groups = tuple[list[list[pq.abc.PGresult]], list[Any], BaseException | None]

#: What reading a result in chunks gives: its last result (the empty end of the rows, or the error), and what the
#: chunks' reader raised.
Chunks = tuple[pq.abc.PGresult | None, BaseException | None]


def _groups(pgconn: pq.abc.PGconn, count: int, each: Each | None) -> Generator[int, int, Groups]:
    """Flush a pipeline, then read its *count* groups of results (the last one the Sync's), handing each successful
    execution's result to *each* as soon as it is in, while the server works on the next ones: a generator of what
    to wait for, as psycopg's own, so that the connection's wait (sync) or the event loop (`AsyncWire`) drives it."""
    while pgconn.flush():
        if (yield internals.WAIT_RW) & internals.READY_R:
            pgconn.consume_input()
    groups: list[list[pq.abc.PGresult]] = []
    group: list[pq.abc.PGresult] = []
    made: list[Any] = []
    failed: BaseException | None = None
    while len(groups) < count:
        while pgconn.is_busy():
            if (yield internals.WAIT_R) & internals.READY_R:
                pgconn.consume_input()
        res = pgconn.get_result()
        if res is None:
            if each is not None and failed is None and group and group[0].status in _OK:
                try:
                    made.append(each(len(groups), group[0]))
                except Exception as err:  # noqa: BLE001 - raised once the pipeline is read (see `Wire.execute_many`)
                    failed = err
            groups.append(group)
            group = []
        elif res.status == _PIPELINE_SYNC:
            groups.append([res])
        else:
            group.append(res)
    return groups, made, failed


def _chunks(pgconn: pq.abc.PGconn, each: Callable[[pq.abc.PGresult], None]) -> Generator[int, int, Chunks]:
    """Flush a statement sent in chunked rows mode, then read its result, handing each chunk of rows to *each* as
    soon as it is in, while the server sends the next: a generator of what to wait for, as `_groups`. What *each*
    raises is kept until the result has been read to its end.

    While chunks already received are made into values, the cyclic garbage collector is paused (as in
    `_outcome.collector_paused`, and for the same reason); it is resumed whenever the read waits for the server,
    so that a slow result never keeps it paused for others."""
    while pgconn.flush():
        if (yield internals.WAIT_RW) & internals.READY_R:
            pgconn.consume_input()
    last: pq.abc.PGresult | None = None
    failed: BaseException | None = None
    paused = False
    try:
        while True:
            while pgconn.is_busy():
                if paused:
                    paused = False
                    gc.enable()
                if (yield internals.WAIT_R) & internals.READY_R:
                    pgconn.consume_input()
            res = pgconn.get_result()
            if res is None:
                if n := pgconn.notifies():
                    _notified(pgconn, n)
                return last, failed
            if res.status == _TUPLES_CHUNK:
                if failed is None:
                    if not paused and gc.isenabled():
                        paused = True
                        gc.disable()
                    try:
                        each(res)
                    except Exception as err:  # noqa: BLE001 - raised once the result is read (`execute_chunked`)
                        failed = err
            elif last is None:
                last = res
    finally:
        if paused:
            gc.enable()


def _notified(pgconn: pq.abc.PGconn, n: pq.PGnotify | None) -> None:
    """Hand *n*, a notification that came with a result, and those after it to the connection's handler, as
    psycopg's reads do (which drop them when there is none). Called when ``pgconn.notifies()`` gave one."""
    while n:
        if pgconn.notify_handler:
            pgconn.notify_handler(n)
        n = pgconn.notifies()


def _read(pgconn: pq.abc.PGconn) -> Generator[int, int, list[pq.abc.PGresult]]:
    """Flush a statement sent, and read every result it gives, as psycopg's ``generators.execute``: the results of
    a statement psycopg's changed wait left unread (`Wire._read_after`)."""
    while pgconn.flush():
        if (yield internals.WAIT_RW) & internals.READY_R:
            pgconn.consume_input()
    results: list[pq.abc.PGresult] = []
    while True:
        while pgconn.is_busy():
            if (yield internals.WAIT_R) & internals.READY_R:
                pgconn.consume_input()
        res = pgconn.get_result()
        if res is None:
            return results
        results.append(res)


def _drive_public(pgconn: pq.abc.PGconn, gen: Generator[int, int, T]) -> T:
    """Run *gen*, a generator of waits of ours (new, or left half-way by psycopg's wait), on the connection's
    socket with the standard library's selectors alone."""
    fd = pgconn.socket
    with selectors.DefaultSelector() as selector:
        try:
            # Told "nothing ready", one left half-way asks again what it waits for.
            wait = next(gen) if inspect.getgeneratorstate(gen) == inspect.GEN_CREATED else gen.send(0)
            while True:
                events = (selectors.EVENT_READ if wait & internals.WAIT_R else 0) | (
                    selectors.EVENT_WRITE if wait & internals.WAIT_W else 0
                )
                selector.register(fd, events)
                mask = sum(ready for _, ready in selector.select())
                selector.unregister(fd)
                ready = (internals.READY_R if mask & selectors.EVENT_READ else 0) | (
                    internals.READY_W if mask & selectors.EVENT_WRITE else 0
                )
                wait = gen.send(ready)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


class Wire:
    """One session's lean path on one connection. It quacks enough like a cursor (``pgresult``, ``adapters``,
    ``fetchone``, ``fetchmany``) for the leak guard, for building a result layout and for reading the rows."""

    __slots__ = (
        "_count",
        "_key",
        "_loaded",
        "_pgq",
        "_pos",
        "_prep",
        "_probing",
        "_tested",
        "_tx",
        "adapters",
        "conn",
        "manager",
        "name",
        "names",
        "pgconn",
        "pgresult",
    )

    def __init__(self, conn: Connection[Any] | AsyncConnection[Any]) -> None:
        self.conn: Any = conn
        self.pgconn = conn.pgconn
        self.adapters = conn.adapters
        #: psycopg's prepare manager of the connection, and the name of the prepared statement that made the last
        #: result (None: sent unnamed). A name is never given to another statement on the same connection.
        self.manager: Any = None
        self.name: bytes | None = None
        #: The last result, as a cursor's ``pgresult``.
        self.pgresult: pq.abc.PGresult | None = None
        #: The prepared statement of each execution of the last batch (values of different types make different
        #: ones, whose columns may differ too).
        self.names: list[bytes] = []
        #: Rows in the last result, and the next one to read.
        self._count = self._pos = 0
        self._tx = Transformer(conn)
        #: The statement of the call being made, as psycopg's prepare manager keys it, and what the manager said
        #: of it (psycopg's ``Prepare``).
        self._pgq = _Query()
        self._key: tuple[bytes, tuple[int, ...]] = (b"", ())
        self._prep: Any = None
        #: The prepared statement, and the format, of the result whose loaders the transformer holds (see `_made`).
        self._loaded: tuple[bytes, bool] | None = None
        #: Whether the connection's wire has passed its self-test (`self_test`), and whether that test's statement
        #: is the one being made.
        self._tested = conn in _tested
        self._probing = False
        try:
            self.manager = internals.prepare_manager(conn)
            internals.lock(conn).acquire  # noqa: B018 - what `execute` holds
            callable(internals.wait(conn))
        except Exception as err:  # noqa: BLE001 - a connection of another shape: no wire on it
            drifted(Drift("psycopg.Connection", err))
            self._tested = False

    def execute(self, sql: str, params: Sequence[Any], binary: bool, made: Makers | None = None) -> Any:
        """Run *sql* (psycopg placeholders) with *params*, or raise psycopg's error for it. Its result (`pgresult`)
        becomes the call's value right away if *made* knows its prepared statement (`Maker.make`); else `UNMADE`
        is returned. `NOT_SENT`, with nothing sent, when psycopg has not prepared the statement for these
        parameter types (yet, or any more): run it through a cursor with ``prepare=True`` then."""
        if not self._tested and not self.self_test():
            return NOT_SENT
        conn = self.conn
        with internals.lock(conn):
            try:
                if not self._send(sql, params, binary):
                    return NOT_SENT
            except Drift as err:
                drifted(err)
                return NOT_SENT
            # The connection's wait: psycopg's C poll loop, stopping the statement on the server on Ctrl-C.
            try:
                results = internals.wait(conn)(internals.execute(self.pgconn))
                if type(results) is not list or (results and not isinstance(results[0], pq.PGresult)):
                    raise Drift("psycopg.generators.execute", TypeError(f"it gave {type(results).__name__}"))  # noqa: TRY301
            except psycopg.Error:
                raise
            except Exception as err:  # noqa: BLE001 - psycopg's wait or generator, changed: read it ourselves
                results = self._read_after(err, "psycopg.Connection.wait(psycopg.generators.execute)", None)
        return self._made(sql, results, binary, made)

    def execute_chunked(
        self, sql: str, params: Sequence[Any], binary: bool, each: Callable[[pq.abc.PGresult], None]
    ) -> pq.abc.PGresult | None:
        """As `execute`, with the rows read in chunks of `CHUNK` as they come: each chunk is handed to *each*
        (`use_chunk` reads it), overlapping the making of values with the server's sending of the rest. Returns the
        result that ends the rows (none of them in it: it has the columns only), or raises psycopg's error, else
        what *each* raised. Only where `CHUNKED_ROWS`."""
        if not self._tested and not self.self_test():
            return None
        conn = self.conn
        with internals.lock(conn):
            try:
                if not self._send(sql, params, binary, chunked=True):
                    return None
            except Drift as err:
                drifted(err)
                return None
            read = self._waited(_chunks(self.pgconn, each))
        return self._chunked_result(sql, read, binary)

    def _waited(self, gen: Any) -> Any:
        """What our generator *gen* reads, driven by psycopg's wait; by us, should that wait have changed."""
        try:
            return internals.wait(self.conn)(gen)
        except psycopg.Error:
            raise
        except Exception as err:  # noqa: BLE001 - psycopg's wait, changed: our generator, driven by us
            return self._read_after(err, "psycopg.Connection.wait", gen)

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
        conn = self.conn
        with internals.lock(conn):
            try:
                batch = self._batch(sql, paramsets, binary)
            except Drift as err:
                drifted(err)
                return None
            if batch is None:
                return None
            pgconn = self.pgconn
            pgconn.enter_pipeline_mode()
            try:
                batch()
                read = self._waited(_groups(pgconn, len(paramsets) + 1, each))
            finally:
                if pgconn.status == _CONNECTION_OK:  # not if `_read_after` closed it
                    pgconn.exit_pipeline_mode()
        return self._results(sql, read)

    def self_test(self) -> bool:
        """Before the first call through a connection's wire: check that it does what psycopg would, by running a
        statement psycopg has prepared through the wire and comparing the result with the cursor's, inside a
        savepoint (a failure leaves the session's transaction as it was). On any difference, wires are turned
        off for the process (`_turn_off`): calls then go through cursors. A database error (a pooler that loses
        prepared statements) only keeps this wire unused. Return whether this wire may be used."""
        if not switch.on:
            return False
        conn = self.conn
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
                    known = conn.execute(_PREPARED_BY_NAME, [self.name.decode()]).fetchone()
                    problem = None if known else f"the server has no prepared statement {self.name!r}"
        except psycopg.Error as err:
            return self._failed_on_server(err)
        except Drift as err:  # the probe's result lost by a changed psycopg (`_read_after`): rolled back with it
            return self._drifted_in_test(err)
        except BaseException:  # interrupted: not tested after all
            self._tested = self._probing = False
            raise
        return self._passed(problem)

    def _failed_on_server(self, err: psycopg.Error) -> bool:
        """The self-test's statement failed on the server (a pooler that loses prepared statements, a connection
        lost): rolled back to its savepoint, it says nothing of psycopg. This call goes through a cursor."""
        self._tested = self._probing = False
        logger.info("pgdecor: a call goes through a cursor: the wire's self-test failed on the server: %s", err)
        return False

    def _drifted_in_test(self, err: Drift) -> bool:
        self._tested = self._probing = False
        drifted(err)
        return False

    def _passed(self, problem: str | None) -> bool:
        self._tested = problem is None and switch.on  # not if a changed psycopg turned wires off meanwhile
        if problem is not None:
            _turn_off(f"a wire's self-test failed: {problem}")
        if not self._tested:
            return False
        _tested.add(self.conn)
        return True

    def _read_after(self, err: Exception, what: str, gen: Generator[int, int, T] | None) -> Any:
        """After psycopg's wait or generator, *what*, raised *err* on a statement sent: wires off, naming it, and
        the statement's results read with libpq's public calls (by *gen*, a generator of ours that psycopg's wait
        was driving, or else as psycopg's would), so that the call still returns them. Where the changed psycopg
        read some of them already, they are lost: the connection is closed, as if it had broken (whether the
        statement ran is unknown; it is never sent again), and psycopg's `OperationalError` raised; on the
        self-test's probe, `Drift` (its savepoint is rolled back, the connection is sound)."""
        drift = err if isinstance(err, Drift) else Drift(what, err)
        drifted(drift)
        pgconn = self.pgconn
        if gen is not None and inspect.getgeneratorstate(gen) != inspect.GEN_CLOSED:
            return _drive_public(pgconn, gen)
        results: list[pq.abc.PGresult] = []
        if pgconn.transaction_status == _ACTIVE:
            results = _drive_public(pgconn, _read(pgconn))
        if gen is None and results:
            return results
        if self._probing:
            raise drift
        pgconn.finish()
        msg = (
            f"pgdecor closed the connection: {drift.what} failed after the statement was sent, and its result is "
            f"lost (psycopg {psycopg.__version__}); whether the statement ran is unknown"
        )
        raise psycopg.OperationalError(msg) from err

    def close(self) -> None:
        """Nothing to let go of: the sync path borrows nothing from the connection."""

    # -- shared by both -------------------------------------------------------------------------------------

    def _send(self, sql: str, params: Sequence[Any], binary: bool, *, chunked: bool = False) -> bool:
        """Send *sql* with *params* (under the connection's lock, so that the statement's name is still good when
        it arrives): the statement psycopg prepared for their types, or the query unnamed if psycopg prepares
        nothing. False, with nothing sent, if psycopg should prepare it first (or has maintenance to do). The
        statement is looked up as psycopg's prepare manager keys it, which the self-test checks."""
        tx = self._tx
        query, formats = _converted.get((sql, tx.encoding)) or self._convert(sql)
        dumped = tx.dump_sequence(params, formats)
        manager = self.manager
        self._key = key = (query, tx.types or ())
        try:
            unnamed = internals.prepare_threshold(manager) is None
            # Statements to deallocate first (`to_flush`): a cursor does that.
            name = None if unnamed or internals.to_flush(manager) else internals.prepared_names(manager).get(key)
        except Exception as err:
            raise Drift("psycopg._preparing.PrepareManager", err) from err
        if unnamed:
            self.name, self._prep = None, internals.NO
            self.pgconn.send_query_params(query, dumped, tx.types, tx.formats, binary)
        else:
            self.name = name
            if name is None:
                return False
            if type(name) is not bytes:
                raise Drift("psycopg._preparing.PrepareManager._names", TypeError(f"a name is {type(name).__name__}"))
            self._prep = internals.YES
            self.pgconn.send_query_prepared(name, dumped, tx.formats, binary)
        if chunked:
            self.pgconn.set_chunked_rows_mode(CHUNK)
        return True

    def _made(self, sql: str, results: Sequence[pq.abc.PGresult], binary: bool, made: Makers | None) -> Any:
        """What `execute` returns for the statement's *results*, once psycopg's prepare manager has seen it as after
        a cursor's execution (its LRU order, and whether the command invalidates its statements); or psycopg's
        error for it. The result (`pgresult`) is read next (`fetchone`, `fetchmany`), by the loaders of the
        result read before if both came from the same prepared statement in the same format: the server refuses to
        change a prepared statement's columns."""
        name, manager = self.name, self.manager
        try:
            if name is not None and internals.LRU_IS_A_MOVE:
                try:  # what psycopg's manager does for it (see `lru_is_a_move`)
                    internals.prepared_names(manager).move_to_end(self._key)
                except KeyError:  # evicted meanwhile (by another thread's statement on the connection): ask psycopg
                    self._seen(results)
            elif name is None or next(reversed(internals.prepared_names(manager)), None) != self._key:
                self._seen(results)  # else the most recent already
        except Exception as err:  # noqa: BLE001 - the statement ran: its result stands, psycopg keeps its manager
            drifted(Drift("psycopg._preparing.PrepareManager", err))
        res = results[0] if results else None
        if res is None or res.status not in _OK:
            self._checked(sql, res)  # raises
        assert res is not None
        self.pgresult = res
        self._count, self._pos = res.ntuples, 0
        found = None if made is None or name is None else made.get((manager, name))
        if found is not None and found.binary is not binary:
            found = None
        loaded = None if name is None else (name, binary)
        self._tx.set_pgresult(res, set_loaders=loaded is None or loaded != self._loaded)
        self._loaded = loaded
        return UNMADE if found is None else found.make(self, res)

    def _chunked_result(self, sql: str, read: Chunks, binary: bool) -> pq.abc.PGresult:
        """A result read in chunks: its end (read as `_made` reads a result; it has no rows), psycopg's error for it,
        or what the chunks' reader raised."""
        last, failed = read
        self._made(sql, [] if last is None else [last], binary, None)
        if failed is not None:
            raise failed
        return self.pgresult  # type: ignore[return-value]

    def use_chunk(self, res: pq.abc.PGresult, *, first: bool) -> None:
        """Read *res*, a chunk of the rows of the statement being executed, next with `fetchmany`; its loaders are
        the *first* chunk's (the columns of a result are the same in each of its chunks)."""
        self.pgresult = res
        self._count, self._pos = res.ntuples, 0
        self._tx.set_pgresult(res, set_loaders=first)
        self._loaded = None

    def _seen(self, results: Sequence[pq.abc.PGresult]) -> None:
        """Tell psycopg's prepare manager of an execution of the statement, as a cursor's execution does."""
        pgq, manager = self._pgq, self.manager
        pgq.query, pgq.types = self._key
        key = manager.maybe_add_to_cache(pgq, self._prep, self.name or b"")
        if key is not None:
            manager.validate(key, self._prep, self.name or b"", results)

    def _batch(self, sql: str, paramsets: Sequence[Sequence[Any]], binary: bool) -> Callable[[], None] | None:
        """What sends a batch (in pipeline mode): every parameter set dumped and its prepared statement found first,
        so that nothing is sent unless all of them can be; None if psycopg should prepare one first."""
        tx, manager = self._tx, self.manager
        try:
            if internals.prepare_threshold(manager) is None or internals.to_flush(manager):
                return None
        except Exception as err:
            raise Drift("psycopg._preparing.PrepareManager", err) from err
        query, formats = self._convert(sql)
        pgq = self._pgq
        pgq.query = query
        names: dict[tuple[int, ...], bytes] = {}
        sends: list[tuple[bytes, Any, Any]] = []
        for params in paramsets:
            dumped = tx.dump_sequence(params, formats)
            types = tx.types or ()
            name = names.get(types)
            if name is None:
                pgq.types = types
                try:
                    prep, name = manager.get(pgq)
                    if prep is not internals.YES:
                        return None
                    if type(name) is not bytes:
                        raise TypeError(f"a name is {type(name).__name__}")  # noqa: TRY301
                    manager.maybe_add_to_cache(pgq, prep, name)  # the LRU order, as a cursor's execution keeps it
                except Exception as err:
                    raise Drift("psycopg._preparing.PrepareManager", err) from err
                names[types] = name
            sends.append((name, dumped, tx.formats))
        send = self.pgconn.send_query_prepared
        fmt = 1 if binary else 0

        def batch() -> None:
            for name, dumped, param_formats in sends:
                send(name, dumped, param_formats, fmt)
            self.pgconn.pipeline_sync()

        self.names = [name for name, _, _ in sends]
        return batch

    def _results(self, sql: str, read: Groups) -> Batch:
        """A batch's results, one per execution, and what was made of them; psycopg's error for the first that
        failed, else what making them raised."""
        (*groups, sync), made, failed = read
        if len(sync) != 1 or sync[0].status != _PIPELINE_SYNC:
            raise psycopg.InterfaceError(f"unexpected results at the end of a batch of {sql!r}")
        results = [self._checked(sql, group[0] if group else None) for group in groups]
        if failed is not None:
            raise failed
        return results, made

    def _checked(self, sql: str, res: pq.abc.PGresult | None) -> pq.abc.PGresult:
        """*res*, a statement's result; psycopg's error for it if it failed (or for none at all)."""
        if res is None:
            raise psycopg.InternalError("got no result from the query")
        status = res.status
        if status == _FATAL_ERROR:
            raise error_from_result(res, encoding=self._tx.encoding)
        if status not in _OK:
            raise psycopg.InterfaceError(f"unexpected result status from {sql!r}: {pq.ExecStatus(status).name}")
        return res

    def use(self, index: int, res: pq.abc.PGresult) -> None:
        """Read *res*, the result of the last batch's execution *index*, next with `fetchone` and `fetchmany`: its
        prepared statement's name is `name` then, and the loaders of the result before serve if it came from the
        same statement (the server refuses to change a prepared statement's columns)."""
        name = self.names[index]
        same = index > 0 and self.names[index - 1] == name
        self.name, self.pgresult = name, res
        self._count, self._pos = res.ntuples, 0
        self._tx.set_pgresult(res, set_loaders=not same)
        self._loaded = None

    def fetchone(self) -> tuple[Any, ...] | None:
        """The last result's next row, as a cursor's ``fetchone``."""
        pos = self._pos
        if pos >= self._count:
            return None
        self._pos = pos + 1
        return self._tx.load_row(pos, tuple)

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        """The last result's next *size* rows at most, as a cursor's ``fetchmany``."""
        pos = self._pos
        self._pos = stop = min(pos + size, self._count)
        return self._tx.load_rows(pos, stop, tuple)

    def _convert(self, sql: str) -> tuple[bytes, list[PyFormat]]:
        encoding = self._tx.encoding
        found = _converted.get((sql, encoding))
        if found is None:
            encoded = sql.encode(encoding)
            try:
                query, formats, _order, _parts = internals.query2pg(encoded, encoding)
                if type(query) is not bytes or not all(isinstance(f, PyFormat) for f in formats):
                    raise TypeError(f"it gave {type(query).__name__} and {formats!r}")  # noqa: TRY301
            except psycopg.Error:
                raise
            except Exception as err:
                raise Drift("psycopg._queries._query2pg", err) from err
            found = _converted[sql, encoding] = (query, list(formats))
        return found
