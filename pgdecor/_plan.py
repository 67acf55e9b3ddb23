"""A stub's plan, and the per-call path that runs it: sync and async twins over shared decisions.

Per call: check the arguments, find the session's connection, take the cached statement, execute, fetch. The
rare paths (first call on a server: resolve the function; first sight of a non-builtin type: describe it) are
catalog queries made by the twins, with every decision in the shared code they call.
"""

from __future__ import annotations

import gc
import itertools
import logging
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from logging import DEBUG
from time import perf_counter
from typing import Any, NoReturn

import psycopg
from psycopg import pq
from psycopg.rows import tuple_row

from ._annotations import describe
from ._calls import ProcedureCall, QueryCall, Statement
from ._convert import too_deep
from ._errors import Error, MappingError, NotFoundError, TooManyRowsError, UndefinedFunctionError, add_note
from ._mapping import Layout, LayoutKey, RowMapper
from ._registry import ServerKey, describe_async, describe_sync, registry_for
from ._results import ResultPlan, Shape
from ._session import Session, _current, no_session_error
from ._shield import finish
from ._signature import Param, compile_check
from ._streams import AsyncStream, Stream
from ._wire import Wire

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
#: Prepared statements whose layouts a plan remembers; more (a pool's connections replaced over time) start over.
_BY_PREPARED_MAX = 256
_NONE, _ONE, _ALL = 0, 1, 2
_cursor_names = itertools.count(1)

#: DEBUG records: each call's stub, SQL object and duration.
logger = logging.getLogger("pgdecor")
_log_enabled = logger.isEnabledFor

ErrorMap = Mapping[str, Callable[[str], BaseException]]


@dataclass(eq=False)
class Plan:
    """Everything derived from a stub, computed once: the call, argument checks and row mapping."""

    #: ``module.qualname`` of the stub.
    stub: str
    #: What the SQL calls, for messages: ``function app.get_user`` or ``the query``.
    sql_object: str
    call: QueryCall | ProcedureCall
    #: One per argument the generated caller packs, in that order.
    params: tuple[Param, ...]
    result: ResultPlan
    is_async: bool
    #: SQLSTATE → exception class raised instead of psycopg's.
    errors: ErrorMap = field(default_factory=dict)
    #: Called with the SQL of each newly composed statement (keeps the stub's ``.sql`` current).
    on_sql: Callable[[str], None] = lambda _sql: None
    #: May run on the session's replica (see `pgdecor.session`).
    readonly: bool = False

    def __post_init__(self) -> None:
        r = self.result
        #: Rows → the return annotation's row type.
        rows = r.shape is not Shape.NONE  # a `-> None` stub maps nothing
        self.row_mapper = RowMapper(
            self.stub, self.sql_object, r.row_type if rows else Any, scalar=r.scalar or not rows, nullable=r.nullable
        )
        #: Raises ArgumentError for an argument tuple that does not fit the annotations; None if all fit.
        self.check = compile_check(self.stub, self.params)
        #: (server, SQL) of the statements a call has run → whether their results are fetched in binary: those
        #: whose first result had only columns psycopg loads the same from binary, which is faster to parse than
        #: text. Later calls run them through the session's `Wire`.
        self._seen: dict[tuple[ServerKey, str], bool] = {}
        #: (prepare manager, statement name) → the layout of that prepared statement's results (see
        #: `cached_layout`).
        self._by_prepared: dict[tuple[object, bytes], Layout] = {}
        #: Whether a call's statement is the same whatever its arguments (none may be left to DEFAULT).
        self._fixed = not (isinstance(self.call, ProcedureCall) and self.call.defaults)
        #: The server key, statement and result format of the last call of a fixed statement that went through a
        #: session's `Wire` on its primary connection (see `_run`); reset when the format to ask for changes.
        self._last: tuple[ServerKey, Statement, bool] | None = None

    @cached_property
    def value_mapper(self) -> RowMapper:
        """The mapping of a function's single value (json, an array, a composite) onto the return annotation."""
        r = self.result
        value_type = r.value_type if r.shape is not Shape.NONE else Any
        return RowMapper(self.stub, self.sql_object, value_type, scalar=True, nullable=r.value_nullable)

    # -- decisions shared by both runners ---------------------------------------------------------------------

    def check_many(self, argsets: list[tuple[Any, ...]]) -> None:
        if self.check is not None:
            for args in argsets:
                self.check(args)

    def session(self, call: str, *, is_async: bool) -> Session:
        """The session of this context, which must be of the stub's kind; *call* is ``()`` or ``.many()``."""
        sess = _current.get()
        if sess is None or sess._is_async is not is_async:
            raise no_session_error(f"{self.stub}{call}", sess, is_async=is_async)
        return sess

    def composed(self, key: ServerKey, args: tuple[Any, ...]) -> Statement:
        """The statement for *args* once the call has been resolved on *key*."""
        assert isinstance(self.call, ProcedureCall)
        statement = self.call.statement(key, args)
        self.on_sql(statement.sql)
        return statement

    def db_error(self, err: psycopg.Error, statement: Statement | None) -> BaseException:
        """The exception to raise for a database error: a mapped one, a clearer pgdecor one, or *err* + a note."""
        ran = f"which ran: {statement.sql}" if statement is not None else "while resolving it"
        mapped = self.errors.get(err.sqlstate or "")
        if mapped is not None:
            new = mapped(f"{self.stub}: {err.diag.message_primary}")
            new.__cause__ = err
            add_note(new, f"pgdecor: SQLSTATE {err.sqlstate} from {self.stub}, {ran}")
            return new
        if (
            isinstance(self.call, ProcedureCall)
            and isinstance(err, psycopg.errors.UndefinedFunction)
            and err.diag.context is None
        ):
            params = ", ".join(f"{p.name} => {describe(p.annotation)}" for p in self.call.params)
            msg = (
                f"{self.stub}: the database has no function {'.'.join(self.call.name)}({params}) any more; "
                f"it was dropped or changed after this process first called it (server said: "
                f"{err.diag.message_primary}); restart the process after changing function signatures"
            )
            new = UndefinedFunctionError(msg, info=err.pgresult)
            new.__cause__ = err
            return new
        add_note(err, f"pgdecor: raised by {self.stub}, {ran}")
        return err

    def not_one(self, count: int) -> None:
        """Handle a single-row result that does not have exactly one row."""
        shape = self.result.shape
        if count == 0:
            if shape is Shape.OPTIONAL:
                return
            msg = (
                f"{self.stub}: {self.sql_object} returned no row but the stub returns exactly one; "
                f"annotate it `-> ... | None` to accept no row"
            )
            raise NotFoundError(msg)
        msg = (
            f"{self.stub}: {self.sql_object} returned {count} rows but the stub returns {shape.value}; "
            f"annotate it `-> list[...]` to get them all, or make the SQL return one row"
        )
        raise TooManyRowsError(msg)

    def no_result_set(self) -> NoReturn:
        msg = (
            f"{self.stub}: {self.sql_object} returned no rows at all (it is not a SELECT and has no RETURNING) "
            f"but the stub returns {self.result.shape.value}; annotate it `-> None` or add RETURNING"
        )
        raise MappingError(msg)

    def mapper(self, statement: Statement) -> RowMapper:
        return self.value_mapper if statement.value else self.row_mapper

    def fetch_kind(self, statement: Statement, res: pq.abc.PGresult | None) -> int:
        """How to fetch a result: `_ONE` (fetchone) or `_ALL` (fetchall); raises for a wrong row count."""
        if res is None:  # psycopg keeps results for later in pipeline mode
            msg = (
                f"{self.stub}: called inside `conn.pipeline()`, where {self.sql_object}'s rows would come only "
                f"at the pipeline's end; call it outside the pipeline block, or use {self.stub}.many(...) to batch"
            )
            raise Error(msg)
        if res.status != _TUPLES_OK:
            self.no_result_set()
        if statement.value:
            return _ONE
        if self.result.shape is Shape.MANY:
            return _ALL
        n = res.ntuples
        if n == 1:
            return _ONE
        self.not_one(n)
        return _NONE

    def cached_layout(
        self, key: ServerKey, statement: Statement, res: pq.abc.PGresult | None, binary: bool, wire: Wire | None
    ) -> tuple[int, LayoutKey | None, Layout | None]:
        """How to fetch *res*, its layout key, and its layout if one fits already (None: build it). A result of a
        prepared statement read by *wire* finds its layout by the statement: the server refuses to change the
        columns of a prepared statement, so only its first result needs looking up by column names and types."""
        kind = self.fetch_kind(statement, res)
        assert res is not None  # fetch_kind raised otherwise
        prepared = (wire.manager, wire.name) if wire is not None and wire.name is not None else None
        if prepared is not None:
            found = self._by_prepared.get(prepared)
            if found is not None and found.binary is binary:
                return kind, None, found
        mapper = self.mapper(statement)
        layout_key = mapper.key(res, key)
        found = mapper.cached(layout_key)
        if found is None or found.binary is not binary:
            return kind, layout_key, None
        if prepared is not None:
            if len(self._by_prepared) >= _BY_PREPARED_MAX:  # connections come and go: forget the old ones'
                self._by_prepared.clear()
            self._by_prepared[prepared] = found
        return kind, layout_key, found

    def checked_format(self, key: ServerKey, statement: Statement, layout: Layout, binary: bool) -> Layout:
        """Check the result's format against its layout; learn from a first text result to ask for binary."""
        if binary == layout.binary:
            return layout
        self._seen[key, statement.sql] = not binary
        self._last = None
        if not binary:
            return layout
        msg = (
            f"{self.stub}: the column types {self.sql_object} returns changed since this process first called it "
            f"(a column's type now loads only as text); the call ran, but its rows cannot be read: call it again"
        )
        raise MappingError(msg)

    def batches(self, key: ServerKey, argsets: list[tuple[Any, ...]]) -> list[tuple[Statement, list[Any]]]:
        """*argsets* (the call resolved on *key*) as runs of consecutive calls sharing one statement."""
        if not argsets:
            return []
        if isinstance(self.call, QueryCall) or not self.call.defaults:  # one statement serves every call
            statement = self.call.cached(key, argsets[0]) or self.composed(key, argsets[0])
            return [(statement, argsets if statement.direct else list(map(statement.params, argsets)))]
        out: list[tuple[Statement, list[Any]]] = []
        for args in argsets:
            statement = self.call.cached(key, args) or self.composed(key, args)
            if not out or out[-1][0] is not statement:
                out.append((statement, []))
            out[-1][1].append(statement.params(args))
        return out

    # -- sync -----------------------------------------------------------------------------------------------

    def run(self, args: tuple[Any, ...]) -> Any:
        if not _log_enabled(DEBUG):
            return self._run(args)
        start = perf_counter()
        try:
            return self._run(args)
        finally:
            self.log(start)

    def log(self, start: float) -> None:
        logger.debug("%s: %s in %.3f ms", self.stub, self.sql_object, (perf_counter() - start) * 1e3)

    def _run(self, args: tuple[Any, ...]) -> Any:
        """A call. Once a call of a fixed statement has gone through the session's wire, later calls on the same
        server and connection send that statement in that format again without looking them up (on a connection
        where psycopg has not prepared it, nothing is sent, and the call is made as a first one)."""
        if self.check is not None:
            self.check(args)
        sess = self.session("()", is_async=False)
        with sess._call_lock:
            try:
                return self._run_known(sess, args)
            except RecursionError:
                raise too_deep(self.stub) from None

    def _run_known(self, sess: Session, args: tuple[Any, ...]) -> Any:
        last, conn = self._last, sess._conn
        if last is None or conn is None or last[0] != sess._key or (wire := sess.wire(conn)) is None:
            return self._run_looked_up(sess, args)
        key, statement, binary = last
        try:
            res = wire.execute(statement.sql, args if statement.direct else statement.params(args), binary)
            if res is None:
                return self._run_looked_up(sess, args)
            if self.result.shape is Shape.NONE:
                return None
            kind, layout_key, found = self.cached_layout(key, statement, res, binary, wire)
            layout = found or self._layout(conn, key, statement, wire, binary, layout_key=layout_key)
        except Error:
            raise
        except psycopg.Error as err:
            raise self.db_error(err, statement)  # noqa: B904 - db_error sets the cause it means
        return _rows(wire, layout, kind)

    def _run_looked_up(self, sess: Session, args: tuple[Any, ...]) -> Any:
        conn = sess._conn
        if conn is None:  # the session's first call borrows
            conn = sess.connection_for(readonly=self.readonly)
        key = sess._key if conn is sess._conn else sess._rkey
        shape = self.result.shape
        statement = self.call.cached(key, args)
        try:
            if statement is None:
                statement = self._resolve(conn, key, args)
            params = args if statement.direct else statement.params(args)
            seen = (key, statement.sql)
            ran = self._seen.get(seen)  # None: never run on this server
            binary = ran is True
            if shape is Shape.STREAM:
                cur: Any = conn.cursor(f"pgdecor_{next(_cursor_names)}", row_factory=tuple_row)
                try:
                    cur.execute(statement.sql, params, binary=binary)
                    layout = self._layout(conn, key, statement, cur, binary)
                except BaseException:
                    cur.close()
                    raise
                return Stream(self.stub, sess, cur, layout.many)
            wire, prepare = None, None
            if ran is not None and (wire := sess.wire(conn)) is not None:
                res = wire.execute(statement.sql, params, binary)
                if res is None:  # not prepared: through a cursor, which has psycopg prepare it for the next call
                    wire, prepare = None, True
                elif self._fixed and conn is sess._conn:
                    self._last = (key, statement, binary)
            if wire is None:
                cur = sess.cursor(conn, binary)
                cur.execute(statement.sql, params, prepare=prepare)
                res = cur.pgresult
                self._seen.setdefault(seen, False)
            if shape is Shape.NONE:
                return None
            kind, layout_key, found = self.cached_layout(key, statement, res, binary, wire)
            layout = found or self._layout(conn, key, statement, wire or cur, binary, layout_key=layout_key)
        except Error:
            raise
        except psycopg.Error as err:
            raise self.db_error(err, statement)  # noqa: B904 - db_error sets the cause it means
        rows = wire or cur
        return _rows(rows, layout, kind)

    def run_many(self, argsets: list[tuple[Any, ...]]) -> Any:
        """Run the call once per argument tuple, pipelined: one round trip for the whole batch."""
        self.check_many(argsets)
        sess = self.session(".many()", is_async=False)
        with sess._call_lock:
            try:
                return self._run_many(sess, argsets)
            except RecursionError:
                raise too_deep(self.stub) from None

    def _run_many(self, sess: Session, argsets: list[tuple[Any, ...]]) -> Any:
        conn = sess._conn
        if conn is None:  # the session's first call borrows
            conn = sess.connection_for(readonly=self.readonly)
        key = sess._key if conn is sess._conn else sess._rkey
        out: list[Any] = []
        statement = None
        try:
            if argsets and self.call.cached(key, argsets[0]) is None:
                self._resolve(conn, key, argsets[0])
            for statement, params in self.batches(key, argsets):
                binary = self._seen.get((key, statement.sql)) is True
                cur = sess.cursor(conn, binary)
                if self.result.shape is Shape.NONE:
                    cur.executemany(statement.sql, params)
                    continue
                cur.executemany(statement.sql, params, returning=True)
                # executemany prepares the statement, and the server refuses to change a prepared statement's
                # result columns: one layout serves the whole batch (checked per result when not prepared).
                layout = None
                while True:
                    kind = self.fetch_kind(statement, cur.pgresult)
                    if layout is None or conn.prepare_threshold is None:
                        layout = self._layout(conn, key, statement, cur, binary)
                    if kind is _ONE:
                        out.append(layout.one(cur.fetchone()))
                    else:
                        out.append(_fetch_all(cur, layout) if kind is _ALL else None)
                    if not cur.nextset():
                        break
        except Error:
            raise
        except psycopg.Error as err:
            raise self.db_error(err, statement)  # noqa: B904 - db_error sets the cause it means
        return None if self.result.shape is Shape.NONE else out

    def _resolve(self, conn: psycopg.Connection[Any], key: ServerKey, args: tuple[Any, ...]) -> Statement:
        call = self.call
        assert isinstance(call, ProcedureCall)
        if call.needs_catalog(key):
            rows = conn.cursor(row_factory=tuple_row).execute(*call.catalog_queries()).fetchall()
            type_rows = conn.cursor(row_factory=tuple_row).execute(*call.types_query(rows)).fetchall()
            call.resolve(key, rows, type_rows)
        return self.composed(key, args)

    def _layout(
        self,
        conn: psycopg.Connection[Any],
        key: ServerKey,
        statement: Statement,
        cur: Any,
        binary: bool,
        *,
        layout_key: LayoutKey | None = None,
    ) -> Layout:
        """The layout of the cursor's current result (whose key the caller may have computed already); its types
        are described first if they must be."""
        mapper = self.mapper(statement)
        if layout_key is None:
            layout_key = mapper.key(cur.pgresult, key)
        layout = mapper.cached(layout_key)
        if layout is None:
            registry = registry_for(key) if mapper.uses_registry else None
            if registry is not None:
                describe_sync(conn, registry, mapper.missing_types(cur.pgresult, registry))
            layout = mapper.build(layout_key, registry, cur.adapters)
        return self.checked_format(key, statement, layout, binary)

    # -- async ----------------------------------------------------------------------------------------------

    def arun(self, args: tuple[Any, ...]) -> Coroutine[Any, Any, Any]:
        # A plain function handing back the coroutine: one coroutine layer less on every call.
        return self._arun(args) if not _log_enabled(DEBUG) else self._alogged(args)

    async def _alogged(self, args: tuple[Any, ...]) -> Any:
        start = perf_counter()
        try:
            return await self._arun(args)
        finally:
            self.log(start)

    async def _arun(self, args: tuple[Any, ...]) -> Any:
        # The session's lock taken here, in the call's own coroutine: no coroutine more per call than before it.
        if self.check is not None:
            self.check(args)
        sess = self.session("()", is_async=True)
        lock = sess._call_lock
        await lock.acquire()
        try:
            last, conn = self._last, sess._conn
            if last is None or conn is None or last[0] != sess._key or (wire := sess.wire(conn)) is None:
                return await self._arun_looked_up(sess, args)
            key, statement, binary = last
            try:
                res = await wire.execute(statement.sql, args if statement.direct else statement.params(args), binary)
                if res is None:
                    return await self._arun_looked_up(sess, args)
                if self.result.shape is Shape.NONE:
                    return None
                kind, layout_key, found = self.cached_layout(key, statement, res, binary, wire)
                layout = found or await self._alayout(conn, key, statement, wire, binary, layout_key=layout_key)
            except Error:
                raise
            except psycopg.Error as err:
                raise self.db_error(err, statement)  # noqa: B904 - db_error sets the cause it means
            return _rows(wire, layout, kind)
        except RecursionError:
            raise too_deep(self.stub) from None
        finally:
            lock.release()

    async def _arun_looked_up(self, sess: Session, args: tuple[Any, ...]) -> Any:
        conn = sess._conn
        if conn is None:  # the session's first call borrows
            conn = await sess.aconnection_for(readonly=self.readonly)
        key = sess._key if conn is sess._conn else sess._rkey
        shape = self.result.shape
        statement = self.call.cached(key, args)
        try:
            if statement is None:
                statement = await self._aresolve(conn, key, args)
            params = args if statement.direct else statement.params(args)
            seen = (key, statement.sql)
            ran = self._seen.get(seen)  # None: never run on this server
            binary = ran is True
            if shape is Shape.STREAM:
                cur: Any = conn.cursor(f"pgdecor_{next(_cursor_names)}", row_factory=tuple_row)
                try:
                    await finish(cur.execute(statement.sql, params, binary=binary), statement_on=conn)
                    layout = await self._alayout(conn, key, statement, cur, binary)
                except BaseException:
                    await cur.close()
                    raise
                return AsyncStream(self.stub, sess, cur, layout.many)
            wire, prepare = None, None
            if ran is not None and (wire := sess.wire(conn)) is not None:
                res = await wire.execute(statement.sql, params, binary)
                if res is None:  # not prepared: through a cursor, which has psycopg prepare it for the next call
                    wire, prepare = None, True
                elif self._fixed and conn is sess._conn:
                    self._last = (key, statement, binary)
            if wire is None:
                cur = sess.cursor(conn, binary)
                await finish(cur.execute(statement.sql, params, prepare=prepare), statement_on=conn)
                res = cur.pgresult
                self._seen.setdefault(seen, False)
            if shape is Shape.NONE:
                return None
            kind, layout_key, found = self.cached_layout(key, statement, res, binary, wire)
            layout = found or await self._alayout(conn, key, statement, wire or cur, binary, layout_key=layout_key)
        except Error:
            raise
        except psycopg.Error as err:
            raise self.db_error(err, statement)  # noqa: B904 - db_error sets the cause it means
        if wire is not None:  # its rows are read without awaiting
            return _rows(wire, layout, kind)
        if kind is _ONE:
            return layout.one(await cur.fetchone())
        return await _afetch_all(cur, layout) if kind is _ALL else None

    async def arun_many(self, argsets: list[tuple[Any, ...]]) -> Any:
        self.check_many(argsets)
        sess = self.session(".many()", is_async=True)
        async with sess._call_lock:
            try:
                return await self._arun_many(sess, argsets)
            except RecursionError:
                raise too_deep(self.stub) from None

    async def _arun_many(self, sess: Session, argsets: list[tuple[Any, ...]]) -> Any:
        conn = sess._conn
        if conn is None:  # the session's first call borrows
            conn = await sess.aconnection_for(readonly=self.readonly)
        key = sess._key if conn is sess._conn else sess._rkey
        out: list[Any] = []
        statement = None
        try:
            if argsets and self.call.cached(key, argsets[0]) is None:
                await self._aresolve(conn, key, argsets[0])
            for statement, params in self.batches(key, argsets):
                binary = self._seen.get((key, statement.sql)) is True
                cur = sess.cursor(conn, binary)
                if self.result.shape is Shape.NONE:
                    await finish(cur.executemany(statement.sql, params), statement_on=conn)
                    continue
                await finish(cur.executemany(statement.sql, params, returning=True), statement_on=conn)
                # executemany prepares the statement, and the server refuses to change a prepared statement's
                # result columns: one layout serves the whole batch (checked per result when not prepared).
                layout = None
                while True:
                    kind = self.fetch_kind(statement, cur.pgresult)
                    if layout is None or conn.prepare_threshold is None:
                        layout = await self._alayout(conn, key, statement, cur, binary)
                    if kind is _ONE:
                        out.append(layout.one(await cur.fetchone()))
                    else:
                        out.append(await _afetch_all(cur, layout) if kind is _ALL else None)
                    if not cur.nextset():
                        break
        except Error:
            raise
        except psycopg.Error as err:
            raise self.db_error(err, statement)  # noqa: B904 - db_error sets the cause it means
        return None if self.result.shape is Shape.NONE else out

    async def _aresolve(self, conn: psycopg.AsyncConnection[Any], key: ServerKey, args: tuple[Any, ...]) -> Statement:
        call = self.call
        assert isinstance(call, ProcedureCall)
        if call.needs_catalog(key):
            rows = await (await conn.cursor(row_factory=tuple_row).execute(*call.catalog_queries())).fetchall()
            type_rows = await (await conn.cursor(row_factory=tuple_row).execute(*call.types_query(rows))).fetchall()
            call.resolve(key, rows, type_rows)
        return self.composed(key, args)

    async def _alayout(
        self,
        conn: psycopg.AsyncConnection[Any],
        key: ServerKey,
        statement: Statement,
        cur: Any,
        binary: bool,
        *,
        layout_key: LayoutKey | None = None,
    ) -> Layout:
        mapper = self.mapper(statement)
        if layout_key is None:
            layout_key = mapper.key(cur.pgresult, key)
        layout = mapper.cached(layout_key)
        if layout is None:
            registry = registry_for(key) if mapper.uses_registry else None
            if registry is not None:
                await describe_async(conn, registry, mapper.missing_types(cur.pgresult, registry))
            layout = mapper.build(layout_key, registry, cur.adapters)
        return self.checked_format(key, statement, layout, binary)

    def stream(self, args: tuple[Any, ...]) -> Any:
        """Entry point for ``def f() -> AsyncIterator[T]`` stubs: an async iterator that runs on first use."""
        return _LazyAsyncStream(self, args)


#: Rows turned into values at a time when fetching a whole result: small batches keep the fetched tuples short
#: lived, which spares the garbage collector from scanning them again and again (measured: ~1.3x faster).
_CHUNK = 1000


def _rows(cur: Any, layout: Layout, kind: int) -> Any:
    """What a call returns from the rows of a client-side cursor (or wire) as `fetch_kind` said to fetch them."""
    if kind is _ONE:
        return layout.one(cur.fetchone())
    return _fetch_all(cur, layout) if kind is _ALL else None


def _fetch_all(cur: Any, layout: Layout) -> list[Any]:
    out: list[Any] = []
    fetch, make = cur.fetchmany, layout.many
    rows = fetch(_CHUNK)
    with _collector_paused(len(rows) == _CHUNK):
        while rows:
            out += make(rows)
            rows = fetch(_CHUNK)
    return out


@contextmanager
def _collector_paused(large: bool) -> Iterator[None]:
    """While a large result becomes objects, pause the cyclic garbage collector: the objects made from rows
    cannot form cycles, and the collector would otherwise scan the growing list again and again (measured:
    a quarter of the time of 100,000 rows). Its previous state is restored; no collection is skipped or
    relied on."""
    if not large or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _afetch_all(cur: Any, layout: Layout) -> list[Any]:
    out: list[Any] = []
    rows = await cur.fetchmany(_CHUNK)
    with _collector_paused(len(rows) == _CHUNK):  # a client-side cursor: fetchmany never waits for the server
        while rows:
            out += layout.many(rows)
            rows = await cur.fetchmany(_CHUNK)
    return out


class _LazyAsyncStream:
    """What a plain ``def`` stub annotated ``-> AsyncIterator[T]`` returns: the query runs at first ``anext``."""

    __slots__ = ("_args", "_plan", "_stream")

    def __init__(self, plan: Plan, args: tuple[Any, ...]) -> None:
        if plan.check is not None:
            plan.check(args)
        self._plan = plan
        self._args = args
        self._stream: AsyncStream[Any] | None = None

    def __aiter__(self) -> _LazyAsyncStream:
        return self

    async def __anext__(self) -> Any:
        if self._stream is None:
            self._stream = await self._plan.arun(self._args)
        return await self._stream.__anext__()

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
