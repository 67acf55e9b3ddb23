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
from psycopg.adapt import AdaptersMap, PyFormat, Transformer
from psycopg.errors import error_from_result

from . import internals, owed
from .generators import PSYCOPG, ChunksRead, Waits
from .guard import _tested, _turn_off, drifted, switch
from .internals import Drift

__all__ = ["CHUNK", "CHUNKED_ROWS", "FOLDS", "BaseWire", "begin_for", "begun"]

logger = logging.getLogger("pgdecor")

#: Rows turned into values at a time when reading a whole result (see `_outcome.rows`), and the size of the chunks
#: a result is read in as it comes (`Wire.execute_chunked`).
CHUNK = 1000
#: Whether results can be read in chunks as they come (libpq's chunked rows mode: libpq 17 and later).
CHUNKED_ROWS = pq.version() >= 170000 and getattr(pq.ExecStatus, "TUPLES_CHUNK", None) is not None

_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
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


class _Query:
    """What psycopg's prepare manager keys a statement by (`internals.Keyed`): one per wire, refilled by each
    call."""

    __slots__ = ("query", "types")

    def __init__(self) -> None:
        self.query = b""
        self.types: tuple[int, ...] = ()


class BaseWire:
    """One session's lean path on one connection, but for its waits. It quacks enough like a cursor (``pgresult``,
    ``adapters``, ``fetchone``, ``fetchmany``) for the leak guard, for building a result layout and for reading the
    rows."""

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
        "_waits",
        "adapters",
        "manager",
        "name",
        "names",
        "pgconn",
        "pgresult",
    )

    def __init__(self, conn: Connection[Any] | AsyncConnection[Any]) -> None:
        self.pgconn = conn.pgconn
        self.adapters: AdaptersMap = conn.adapters
        #: psycopg's prepare manager of the connection, and the name of the prepared statement that made the last
        #: result (None: sent unnamed). A name is never given to another statement on the same connection.
        self.manager: internals.Manager = _NO_MANAGER
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
        #: of it.
        self._pgq = _Query()
        self._key: internals.Key = (b"", ())
        self._prep: internals.Prepare = internals.NO
        #: The prepared statement, and the format, of the result whose loaders the transformer holds (see `_made`).
        self._loaded: tuple[bytes, bool] | None = None
        #: Whether the connection's wire has passed its self-test (`Wire.self_test`), and whether that test's
        #: statement is the one being made.
        self._tested = conn in _tested
        self._probing = False
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
        self, sql: str, params: Sequence[Any], binary: bool, *, chunked: bool = False, begin: bytes | None = None
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

        *begin*: the statement goes in a pipeline after that BEGIN (and a Flush, if the connection is `owed` its
        check: BEGIN's answer pays it), then a Sync; the caller reads the three, and leaves pipeline mode."""
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
            if not unnamed and name is not None and type(name) is not bytes:
                name_drift = TypeError(f"a name is {type(name).__name__}")
                raise Drift(internals.NAMES, name_drift)  # noqa: TRY301
        except Drift as err:
            drifted(err)
            return False
        pgconn = self.pgconn
        if unnamed:
            self.name, self._prep = None, internals.NO
        else:
            self.name = name
            if name is None:
                return False
            self._prep = internals.YES
        if chunked or begin is not None:
            pgconn.enter_pipeline_mode()
        if begin is not None:
            pgconn.send_query_params(begin, None)
            if pgconn in owed.owed:
                pgconn.send_flush_request()
        if name is None:
            pgconn.send_query_params(query, dumped, tx.types, tx.formats, binary)
        else:
            pgconn.send_query_prepared(name, dumped, tx.formats, binary)
        if chunked:
            pgconn.set_chunked_rows_mode(CHUNK)
        if chunked or begin is not None:
            pgconn.pipeline_sync()
        return True

    def _made(self, sql: str, results: Sequence[pq.abc.PGresult], binary: bool) -> None:
        """Take the statement's *results*, once psycopg's prepare manager has seen it as after a cursor's execution
        (its LRU order, and whether the command invalidates its statements); or raise psycopg's error for it. The
        result (`pgresult`) is read next (`fetchone`, `fetchmany`), by the loaders of the result read before if
        both came from the same prepared statement in the same format: the server refuses to change a prepared
        statement's columns."""
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
            drifted(Drift(internals.MANAGER, err))
        res = results[0] if results else None
        if res is None or res.status not in _OK:
            self._checked(sql, res)  # raises
        assert res is not None
        self.pgresult = res
        self._count, self._pos = res.ntuples, 0
        loaded = None if name is None else (name, binary)
        self._tx.set_pgresult(res, set_loaders=loaded is None or loaded != self._loaded)
        self._loaded = loaded

    def _seen(self, results: Sequence[pq.abc.PGresult]) -> None:
        """Tell psycopg's prepare manager of an execution of the statement, as a cursor's execution does."""
        pgq, manager = self._pgq, self.manager
        pgq.query, pgq.types = self._key
        key = manager.maybe_add_to_cache(pgq, self._prep, self.name or b"")
        if key is not None:
            manager.validate(key, self._prep, self.name or b"", results)

    def _chunked_result(self, sql: str, read: ChunksRead, binary: bool) -> pq.abc.PGresult:
        """A result read in chunks: its end (read as `_made` reads a result; it has no rows), or psycopg's error for
        it."""
        last = read.last
        self._made(sql, [] if last is None else [last], binary)
        assert self.pgresult is not None
        return self.pgresult

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

    # -- what the self-test found (`Wire.self_test`) -----------------------------------------------------------

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
