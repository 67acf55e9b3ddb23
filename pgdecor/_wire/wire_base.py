"""What the sync and the async wire (`_wire.wire`, `_wire.wire_async`) share, without I/O: sending a statement as
psycopg prepared it, keeping psycopg's prepare manager as a cursor's execution would, and reading the result.

A wire asks psycopg's prepare manager what a cursor would (the statement's name under psycopg's own key) and tells
it of each execution (`PrepareManager.maybe_add_to_cache`, and `validate` for what a command invalidates), so that
psycopg's LRU order and invalidation rules hold as they are, in whichever psycopg is installed; where a manager of
its own shows that all psycopg does for a prepared statement run again is to move it to the recent end of that order
(`internals.lru_is_a_move`), the wire does just that. What a wire reads, it returns: the run layer makes the
values.

A connection out of autocommit and idle begins a transaction with its next statement: a cursor sends BEGIN first,
waiting for its answer; a wire sends it with the statement, in one pipeline (`begin_for`), one round trip for both.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

import psycopg
from psycopg import AsyncConnection, Connection, pq
from psycopg.adapt import PyFormat, Transformer

from . import internals, owed
from .generators import PSYCOPG, ChunksRead, Waits
from .guard import _tested, _turn_off, drifted, switch
from .internals import Drift
from .reader import Query, Reader

__all__ = ["CHUNK", "CHUNKED_ROWS", "FOLDS", "BaseWire", "begin_for", "begun", "send_begin"]

logger = logging.getLogger("pgdecor")

#: Rows turned into values at a time when reading a whole result (see `_outcome.rows`), and the size of the chunks
#: a result is read in as it comes (`_wire.reads_async.AsyncChunks`).
CHUNK = 1000
#: Whether results can be read in chunks as they come (libpq's chunked rows mode: libpq 17 and later).
CHUNKED_ROWS = pq.version() >= 170000 and getattr(pq.ExecStatus, "TUPLES_CHUNK", None) is not None

_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_IDLE = pq.TransactionStatus.IDLE
#: Whether a BEGIN can go with a statement of the extended protocol (libpq's pipeline mode: libpq 14 and later).
FOLDS = psycopg.capabilities.has_pipeline()


def begin_for(conn: Connection[Any] | AsyncConnection[Any]) -> bytes | None:
    """The BEGIN a statement sent now on *conn* must follow, as psycopg composes it from the connection's settings
    (its isolation level, read-only and deferrable); None where the statement begins nothing (autocommit, or a
    transaction under way). Whatever sends a statement with libpq's own calls on a session's connection asks."""
    if conn.pgconn.transaction_status != _IDLE or conn.autocommit:
        return None
    parts = ["BEGIN"]
    if conn.isolation_level is not None:
        parts.append(f"ISOLATION LEVEL {conn.isolation_level.name.replace('_', ' ')}")
    if conn.read_only is not None:
        parts.append("READ ONLY" if conn.read_only else "READ WRITE")
    if conn.deferrable is not None:
        parts.append("DEFERRABLE" if conn.deferrable else "NOT DEFERRABLE")
    return " ".join(parts).encode()


def send_begin(pgconn: pq.abc.PGconn, begin: bytes) -> None:
    """Send *begin* (`begin_for`) first in a pipeline: with a Flush after it where the connection is `owed` its
    check, so that BEGIN's answer, which pays it, comes at once."""
    pgconn.send_query_params(begin, None)
    if pgconn in owed.owed:
        pgconn.send_flush_request()


def begun(groups: list[list[pq.abc.PGresult]]) -> list[pq.abc.PGresult]:
    """The statement's results in what a pipeline of BEGIN, the statement and a Sync gave; BEGIN's own if it failed
    (the statement was skipped)."""
    first = groups[0]
    return first if not first or first[0].status != _COMMAND_OK else groups[1]


#: The prepare manager of a wire whose connection has none where psycopg keeps it: never asked, as its self-test
#: fails first (wires are off).
_NO_MANAGER = cast("internals.Manager", object())

#: (SQL, encoding) → the SQL with $n placeholders, and the format each placeholder asks for.
_converted: dict[tuple[str, str], tuple[bytes, list[PyFormat]]] = {}


def converted(sql: str, encoding: str) -> tuple[bytes, list[PyFormat]]:
    """*sql* with psycopg's placeholders as the server's ($n), and the format each asks for, by psycopg's own
    conversion (cached)."""
    found = _converted.get((sql, encoding))
    if found is None:
        try:
            query, formats, _order, _parts = internals.query2pg(sql.encode(encoding), encoding)
            if type(query) is not bytes or not all(isinstance(f, PyFormat) for f in formats):
                raise TypeError(f"it gave {type(query).__name__} and {formats!r}")  # noqa: TRY301
        except psycopg.Error:
            raise
        except Exception as err:
            raise Drift(internals.QUERY2PG, err) from err
        found = _converted[sql, encoding] = (query, list(formats))
    return found


class BaseWire(Reader):
    """One session's lean path on one connection, but for its waits: it sends a call's statement, and reads its
    result (`Reader`)."""

    __slots__ = ("_open", "_probing", "_tested", "_waits", "names", "pgconn")

    def __init__(self, conn: Connection[Any] | AsyncConnection[Any]) -> None:
        super().__init__(Transformer(conn), conn.adapters, _NO_MANAGER, Query())
        self.pgconn = conn.pgconn
        #: The prepared statement of each execution of the last batch (values of different types make different
        #: ones, whose columns may differ too).
        self.names: list[bytes] = []
        #: Whether the connection's wire has passed its self-test (`Wire.self_test`), and whether that test's
        #: statement is the one being made.
        self._tested = conn in _tested
        self._probing = False
        #: Whether the result of a call is awaited after which other calls may send their statements, in the same
        #: pipeline (an async session's: `_wire.flight`).
        self._open = False
        #: How the wire's generators wait: as psycopg's wait runs them, unless the async wire has its own.
        self._waits: Waits = PSYCOPG
        try:
            self.manager = internals.prepare_manager(conn)
            internals.lock(conn).acquire  # noqa: B018 - what `execute` holds
            callable(internals.wait(conn))
        except Exception as err:  # noqa: BLE001 - a connection of another shape: no wire on it
            drifted(Drift("psycopg.Connection", err))
            self._tested = False

    def _send(
        self,
        sql: str,
        params: Sequence[Any],
        binary: bool,
        *,
        piped: bool = False,
        chunked: bool = False,
        begin: bytes | None = None,
        joining: bool = False,
    ) -> bool:
        """Send *sql* with *params* (under the connection's lock, so that the statement's name is still good when
        it arrives): the statement psycopg prepared for their types, or the query unnamed if psycopg prepares
        nothing. False, with nothing sent, if psycopg should prepare it first (or has maintenance to do), or if a
        private of psycopg answered otherwise (wires off then). The statement is looked up as psycopg's prepare
        manager keys it, which the self-test checks.

        *chunked*: its rows to be read in chunks of `CHUNK` as they come, the statement alone in a pipeline with its
        own Sync. libpq keeps a statement's chunked rows mode for the first statement of a pipeline entered next
        (it resets the mode as it sends a statement outside a pipeline, or moves from one statement of a pipeline to
        the next): past this Sync, the connection is left in the mode it was found in, for whatever runs next on
        it (a batch, psycopg's ``executemany``, a user's ``pipeline()``).

        *piped* (where libpq has pipelines, `FOLDS`): the statement goes in a pipeline, then a Sync, for the caller
        to read both and leave the pipeline: statements of other calls can go after it meanwhile (`_wire.flight`).
        *begin*: a BEGIN goes first in it (and a Flush, if the connection is `owed` its check: BEGIN's answer pays
        it). *joining*: the connection is in a pipeline already, whose statements' results are being read."""
        tx, manager = self._tx, self.manager
        try:
            query, formats = _converted.get((sql, tx.encoding)) or converted(sql, tx.encoding)
            dumped = tx.dump_sequence(params, formats)
            self._key = key = (query, tx.types or ())
            try:
                unnamed = internals.prepare_threshold(manager) is None
                # Statements to deallocate first (`to_flush`): a cursor does that.
                name = None if unnamed or internals.to_flush(manager) else internals.prepared_names(manager).get(key)
            except Exception as err:
                raise Drift(internals.MANAGER, err) from err
            if name is not None and type(name) is not bytes:
                name_drift = TypeError(f"a name is {type(name).__name__}")
                raise Drift(internals.NAMES, name_drift)  # noqa: TRY301
        except Drift as err:
            drifted(err)
            return False
        pgconn = self.pgconn
        self.name = name
        if name is not None:
            self._prep = internals.YES
        elif unnamed:
            self._prep = internals.NO
        else:
            return False
        piped = piped or chunked or begin is not None
        if piped:
            if not joining:
                pgconn.enter_pipeline_mode()
            if begin is not None:
                send_begin(pgconn, begin)
        if name is None:
            pgconn.send_query_params(query, dumped, tx.types, tx.formats, binary)
        else:
            pgconn.send_query_prepared(name, dumped, tx.formats, binary)
        if piped:
            if chunked:
                pgconn.set_chunked_rows_mode(CHUNK)
            pgconn.pipeline_sync()
        return True

    def _chunked_result(self, sql: str, read: ChunksRead, binary: bool) -> pq.abc.PGresult:
        """A result read in chunks: its end (read as `_made` reads a result; it has no rows), or psycopg's error for
        it."""
        last = read.last
        self._made(sql, [] if last is None else [last], binary)
        assert self.pgresult is not None
        return self.pgresult

    def use_chunk(self, res: pq.abc.PGresult, *, first: bool) -> None:
        """Read *res*, a chunk of the rows of the statement being executed, next with `fetchmany`; its loaders are
        the *first* chunk's (the columns of a result are the same in each of its chunks)."""
        self.pgresult = res
        self._count, self._pos = res.ntuples, 0
        self._tx.set_pgresult(res, set_loaders=first)
        self._loaded = None

    def use(self, index: int, res: pq.abc.PGresult) -> None:
        """Read *res*, the result of the last batch's execution *index*, next with `fetchone` and `fetchmany`: its
        prepared statement's name is `name` then, and the loaders of the result before serve if it came from the
        same statement (the server refuses to change a prepared statement's columns)."""
        names = self.names
        name = names[index]
        self._tx.set_pgresult(res, set_loaders=index == 0 or names[index - 1] != name)
        self.name, self.pgresult = name, res
        self._count, self._pos = res.ntuples, 0
        self._loaded = None

    def only_row(self, res: pq.abc.PGresult, fresh: bool) -> tuple[Any, ...]:
        """The row of *res*, a result of the last batch with exactly one (`_run.outcome.ONE`), loaded as `use` then
        `fetchone` would load it: by loaders of its own if *fresh* (its prepared statement is not the one whose
        result was loaded before)."""
        tx = self._tx
        tx.set_pgresult(res, set_loaders=fresh)
        self.pgresult, self._count, self._pos = res, 1, 1  # its row read (the leak guard sees the call's progress)
        self._loaded = None
        return tx.load_row(0, tuple)

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

    def _passed(self, conn: Connection[Any] | AsyncConnection[Any], problem: str | None) -> bool:
        self._tested = problem is None and switch.on  # not if a changed psycopg turned wires off meanwhile
        if problem is not None:
            _turn_off(f"a wire's self-test failed: {problem}")
        if not self._tested:
            return False
        _tested.add(conn)
        return True
