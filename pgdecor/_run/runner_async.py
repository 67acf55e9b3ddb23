"""Running a plan's calls in async sessions: a call, a batch (`AsyncRunner.many`), a stream.

Per call: check the arguments, find the session's lease, take the cached statement, execute, fetch. A call of a
statement already run on the server goes through the lease's `Wire`; the rare paths (the first call on a server:
resolve the function; the first sight of a non-builtin type: describe it) are catalog queries (`_sources.probe_async`).
What calls learn is kept in the plan's `Facts`; what a result means is `_run.outcome`'s.

This is the async source; `_run.runner` (`Runner`, for sync stubs) is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable
from logging import DEBUG
from time import perf_counter
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from pgdecor._counters import counters
from pgdecor._errors import Error, NoSessionError
from pgdecor._limits import deadlines, slow
from pgdecor._limits.deadlines import Limit, limit_for, watchdog
from pgdecor._plan.plan import Plan
from pgdecor._plan.procedure import ProcedureCall
from pgdecor._plan.results import Shape
from pgdecor._plan.statement import Statement
from pgdecor._rows.json_load import too_deep
from pgdecor._rows.layouts import Layout, LayoutKey
from pgdecor._rows.registry import registry_for
from pgdecor._rows.streams import StreamBase
from pgdecor._session.current import current, current_session
from pgdecor._session.lease_async import AsyncLease
from pgdecor._session.scope_async import alease_for
from pgdecor._session.state import AsyncState
from pgdecor._sources import probe_async as probe
from pgdecor._wire.shield import finish
from pgdecor._wire.wire import NOT_SENT, UNMADE

from . import outcome, trace
from .facts import Facts
from .outcome import ALL, COUNT, NONE, ONE
from .stream_async import AsyncStream, LazyAsyncStream

__all__ = ["AsyncRunner"]

_cursor_names = itertools.count(1)
#: What `AsyncRunner._reader` gives for a result it cannot read yet.
_LATER = object()
_log_enabled = outcome.logger.isEnabledFor
_IDLE = psycopg.pq.TransactionStatus.IDLE
_INERROR = psycopg.pq.TransactionStatus.INERROR

if True:  # ASYNC
    _WITH = "async with "
else:
    _WITH = "with "

#: The savepoint of a call whose declared errors undo it alone (see `AsyncRunner._in_savepoint`).
_SAVEPOINT = "SAVEPOINT pgdecor_call"
_RELEASE = "RELEASE SAVEPOINT pgdecor_call"
_UNDO = "ROLLBACK TO SAVEPOINT pgdecor_call; RELEASE SAVEPOINT pgdecor_call"


class AsyncRunner:
    """Runs one plan's calls (see the module docstring)."""

    __slots__ = ("_names", "facts", "plan")

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.facts = Facts(plan)
        self._names = tuple(p.name for p in plan.params)

    def call(self, args: tuple[Any, ...]) -> Any:
        """A call (the generated caller's target). In async, a plain function handing back the coroutine: one
        coroutine layer less on every call."""
        if trace.settings.on and trace.recording():
            return self._traced(args, None)
        if slow.armed.on:
            return self._timed(args)
        return self._call(args) if not _log_enabled(DEBUG) else self._logged(args)

    async def _timed(self, args: tuple[Any, ...]) -> Any:
        """A call whose duration is compared with its threshold, if it has one (see `_limits.slow`)."""
        start = perf_counter()
        result = await (self._call(args) if not _log_enabled(DEBUG) else self._logged(args))
        took = perf_counter() - start
        sess = current.get()
        threshold = self.plan.slow
        if threshold is None and sess is not None:
            threshold = sess.source.settings.slow_call
        if threshold is not None and took > threshold:
            lease = None if sess is None else sess.lease or sess.replica_lease
            statement = None if lease is None else self.plan.call.cached(lease.key, args)
            sql = self.plan.sql_object if statement is None else statement.sql
            slow.log_slow(self.plan.stub, took, threshold, result, sql)
            (counters if sess is None else sess.source.counters).add("slow_calls")
        return result

    async def _logged(self, args: tuple[Any, ...]) -> Any:
        start = perf_counter()
        try:
            return await self._call(args)
        finally:
            outcome.log(self.plan, start)

    async def _traced(self, args: tuple[Any, ...], argsets: list[tuple[Any, ...]] | None) -> Any:
        """A call, or with *argsets* a batch, in a span of its own (see `_run.trace`); a stream's span ends with it."""
        sample = argsets[0] if argsets else args
        if argsets is None:
            extra = trace.parameters(self._names, args)
        else:
            extra = {"db.operation.batch.size": len(argsets)} if len(argsets) > 1 else None
        traced = trace.start(self.facts.operation(sample, None), extra)
        try:
            result = await self._untraced(args, argsets)
        except BaseException as err:
            self._ended(traced, sample, err)
            raise
        if isinstance(result, StreamBase):
            traced.detach()
            result.on_end(lambda: self._ended(traced, sample, None))
        else:
            self._ended(traced, sample, None)
        return result

    async def _untraced(self, args: tuple[Any, ...], argsets: list[tuple[Any, ...]] | None) -> Any:
        if argsets is not None:
            return await self._many(argsets)
        if slow.armed.on:
            return await self._timed(args)
        return await (self._call(args) if not _log_enabled(DEBUG) else self._logged(args))

    def _ended(self, traced: trace.Call, args: tuple[Any, ...], error: BaseException | None) -> None:
        sess = current.get()
        lease = None if sess is None else sess.lease or sess.replica_lease
        if lease is not None:
            operation = self.facts.operation(args, lease.key)
            if operation is not traced.operation:
                traced.rename(operation)
        traced.end(None if lease is None else lease.key[:3], error)

    async def _call(self, args: tuple[Any, ...]) -> Any:
        """Once a call of a fixed statement has gone through the session's wire, later calls on the same server
        and connection send that statement in that format again without looking them up (on a connection where
        psycopg has not prepared it, nothing is sent, and the call is made as a first one)."""
        plan = self.plan
        if plan.check is not None:
            plan.check(args)
        sess = current_session(plan.stub, "()", is_async=True)
        lock = sess.lock  # taken in the call's own frame (async: its own coroutine, none more per call)
        await lock.acquire()
        try:
            if plan.autocommit:
                _outside_transaction(plan, sess, "()")
            if deadlines.armed.on and (limit := limit_for(plan.stub, plan.sql_object, plan.timeout, sess)):
                return await self._limited(sess, args, limit)
            if plan.errors:
                return await self._in_savepoint(sess, args)
            last, lease = self.facts.last, sess.lease
            if last is None or lease is None or last[0] != lease.key or (wire := lease.wire()) is None:
                return await self._looked_up(sess, args)
            key, statement, binary = last
            params = args if statement.direct else statement.params(args)
            try:
                if self.facts.large:
                    made = await self._chunked(lease, wire, statement, params, binary)
                    return made if made is not _LATER else await self._looked_up(sess, args)
                made = await wire.execute(statement.sql, params, binary, self.facts.made)
                if made is not UNMADE:
                    return made if made is not NOT_SENT else await self._looked_up(sess, args)
                res = wire.pgresult
                if plan.result.shape is Shape.NONE:
                    return None
                kind = outcome.fetch_kind(plan, statement, res)
                layout_key, found = self.facts.layout(key, statement, res, binary, wire)
                layout = found or await self._layout(lease, statement, wire, binary, layout_key)
            except psycopg.Error as err:
                raise outcome.db_error(plan, err, statement)  # noqa: B904 - db_error sets the cause it means
            if kind is ALL:
                assert res is not None  # `fetch_kind` raised otherwise
                self.facts.read_whole(res.ntuples)
            return outcome.rows(wire, layout, kind)
        except RecursionError:
            raise too_deep(plan.stub) from None
        finally:
            lock.release()

    async def _limited(self, sess: AsyncState, args: tuple[Any, ...], limit: Limit) -> Any:
        """A call given *limit*: its statement through a cursor, in a pipeline that sets its statement timeout
        (see `_limits.deadlines`), and watched, should its server not answer. None of it is sent once the limit has
        passed."""
        lease: AsyncLease | None = sess.lease
        if lease is None:
            try:
                lease = await alease_for(sess, readonly=self.plan.readonly, within=limit.left())
            except PoolTimeout as err:
                if limit.remaining() > 0:  # the pool's own timeout, not the call's limit
                    raise
                raise limit.error("no connection of its pool was free in time, so nothing was sent") from err
        watch = watchdog.watch(lease.conn, limit.left())
        try:
            run = self._in_savepoint if self.plan.errors else self._looked_up
            result = await run(sess, args, limit)
        except BaseException as err:
            if watchdog.done(watch):
                await _retire(lease.conn)
            mine = limit.ours(err, watch) if isinstance(err, Exception) else None
            if mine is None:
                raise
            cause = err if isinstance(err, psycopg.Error) else err.__cause__
            raise mine from cause
        if watchdog.done(watch):
            await _retire(lease.conn)
            raise limit.late()
        return result

    async def _in_savepoint(self, sess: AsyncState, args: tuple[Any, ...], limit: Limit | None = None) -> Any:
        """A call of a stub that declares errors (``errors=``), in a savepoint of its own: one of those errors
        undoes the call alone, so that code which catches it can go on and commit the rest of the session. Any
        other error leaves the transaction failed, as it would without the savepoint."""
        lease: AsyncLease = sess.lease or await alease_for(sess, readonly=self.plan.readonly)
        if lease.tx is None:  # autocommit: the call is a transaction of its own already
            return await self._looked_up(sess, args, limit)
        conn = lease.conn
        await finish(conn.execute(_SAVEPOINT), statement_on=conn)
        try:
            result = await self._looked_up(sess, args, limit)
        except BaseException as err:
            cause = err.__cause__
            declared = isinstance(cause, psycopg.Error) and (cause.sqlstate or "") in self.plan.errors
            if declared and conn.info.transaction_status == _INERROR:
                await finish(conn.execute(_UNDO), statement_on=conn)
            raise
        await finish(conn.execute(_RELEASE), statement_on=conn)
        return result

    async def _chunked(self, lease: AsyncLease, wire: Any, statement: Statement, params: Any, binary: bool) -> Any:
        """A call whose result is read in chunks as they come, each made into values while the server sends the
        next (`Wire.execute_chunked`): for a statement whose last result was large. `_LATER` if the wire sent
        nothing. The chunks that come before their layout is known (it was forgotten, or the result's columns
        changed) are read once the whole result is in."""
        facts, key = self.facts, lease.key
        out: list[Any] = []
        later: list[Any] = []
        many: Callable[[list[Any]], list[Any]] | None = None  # the chunks' layout, once known
        fetchmany, use_chunk = wire.fetchmany, wire.use_chunk

        def each(res: Any) -> None:
            nonlocal many
            use_chunk(res, first=many is None)
            if many is None and not later and (found := facts.layout(key, statement, res, binary, wire)[1]):
                many = found.many
            if many is None:
                later.append(res)
                return
            out.extend(many(fetchmany(res.ntuples)))

        end = await wire.execute_chunked(statement.sql, params, binary, each)
        if end is None:
            return _LATER
        outcome.fetch_kind(self.plan, statement, end)  # raises if it has no rows to give
        if not out and not later:  # no rows at all: the columns are checked all the same
            later.append(end)
        if later:
            wire.use_chunk(later[0], first=True)
            layout_key, found = facts.layout(key, statement, later[0], binary, wire)
            layout = found or await self._layout(lease, statement, wire, binary, layout_key)
            for i, res in enumerate(later):
                wire.use_chunk(res, first=i == 0)
                out += outcome.rows(wire, layout, ALL)
        facts.read_whole(len(out))
        return out

    async def _looked_up(self, sess: AsyncState, args: tuple[Any, ...], limit: Limit | None = None) -> Any:
        plan, facts = self.plan, self.facts
        lease: AsyncLease = sess.lease or await alease_for(sess, readonly=plan.readonly)
        key = lease.key
        shape = plan.result.shape
        statement = plan.call.cached(key, args)
        try:
            if statement is None:
                await self._resolve(lease)
                statement = plan.statement(key, args)
            params = args if statement.direct else statement.params(args)
            ran = facts.format(key, statement)  # None: never run on this server
            binary = ran is True and lease.binary
            if shape is Shape.STREAM:
                return await self._stream(sess, lease, statement, params, binary)
            wire, prepare = None, None
            if limit is None and ran is not None and (wire := lease.wire()) is not None:
                if facts.large:
                    made = await self._chunked(lease, wire, statement, params, binary)
                    if made is not _LATER:
                        facts.ran_through_wire(key, statement, binary, primary=lease is sess.lease)
                        return made
                    res = None
                else:
                    res = None if await wire.execute(statement.sql, params, binary) is NOT_SENT else wire.pgresult
                if res is None:  # not prepared: through a cursor, which has psycopg prepare it for the next call
                    wire, prepare = None, True
                else:
                    facts.ran_through_wire(key, statement, binary, primary=lease is sess.lease)
            if wire is None:
                cur = lease.cursor(binary)
                if limit is None:
                    await finish(cur.execute(statement.sql, params, prepare=prepare), statement_on=lease.conn)
                else:
                    await finish(
                        _execute_limited(lease.conn, cur, statement.sql, params, limit), statement_on=lease.conn
                    )
                res = cur.pgresult
                facts.ran_through_cursor(key, statement)
            if shape is Shape.NONE:
                return None
            kind = outcome.fetch_kind(plan, statement, res)
            layout_key, found = facts.layout(key, statement, res, binary, wire)
            layout = found or await self._layout(lease, statement, wire or cur, binary, layout_key)
            if kind is ALL and res is not None:
                facts.read_whole(res.ntuples)
            if wire is not None:  # its rows are read without awaiting
                return outcome.rows(wire, layout, kind)
            return await _cursor_rows(cur, layout, kind)
        except psycopg.Error as err:
            raise outcome.db_error(plan, err, statement)  # noqa: B904 - db_error sets the cause it means

    async def many(self, argsets: list[tuple[Any, ...]]) -> Any:
        """Run the call once per argument tuple, pipelined: one round trip for the whole batch."""
        if trace.settings.on and trace.recording():
            return await self._traced((), argsets)
        return await self._many(argsets)

    async def _many(self, argsets: list[tuple[Any, ...]]) -> Any:
        plan = self.plan
        plan.check_many(argsets)
        sess = current_session(plan.stub, ".many()", is_async=True)
        async with sess.lock:
            if plan.autocommit:
                _outside_transaction(plan, sess, ".many()")
            if deadlines.armed.on and (limit := limit_for(plan.stub, plan.sql_object, plan.timeout, sess)):
                limit.left()  # a batch is not sent once its limit has passed (and is not bounded otherwise)
            try:
                return await self._batch(sess, argsets)
            except RecursionError:
                raise too_deep(plan.stub) from None

    async def _batch(self, sess: AsyncState, argsets: list[tuple[Any, ...]]) -> Any:
        plan = self.plan
        lease: AsyncLease = sess.lease or await alease_for(sess, readonly=plan.readonly)
        key = lease.key
        out: list[Any] = []
        statement = None
        try:
            if argsets and plan.call.cached(key, argsets[0]) is None:
                await self._resolve(lease)
            for statement, params in plan.batches(key, argsets):
                ran = self.facts.format(key, statement)
                binary = ran is True and lease.binary
                wire = lease.wire() if ran is not None and len(params) > 1 else None
                if wire is not None:  # the statement's executions pipelined by the wire, if psycopg prepared it
                    rows = plan.result.shape is not Shape.NONE
                    each = self._reader(lease, wire, statement, binary) if rows else None
                    read = await wire.execute_many(statement.sql, params, binary, each)
                    if read is not None:
                        out += await self._wire_rows(lease, wire, statement, binary, read) if rows else []
                        continue
                cur = lease.cursor(binary)
                self.facts.ran_through_cursor(key, statement)
                if plan.result.shape is Shape.NONE:
                    await finish(cur.executemany(statement.sql, params), statement_on=lease.conn)
                    continue
                await finish(cur.executemany(statement.sql, params, returning=True), statement_on=lease.conn)
                # Each result by its own layout: values of different types make prepared statements of their own.
                while True:
                    kind = outcome.fetch_kind(plan, statement, cur.pgresult)
                    layout = await self._layout(lease, statement, cur, binary)
                    out.append(await _cursor_rows(cur, layout, kind))
                    if not cur.nextset():
                        break
        except psycopg.Error as err:
            raise outcome.db_error(plan, err, statement)  # noqa: B904 - db_error sets the cause it means
        return None if plan.result.shape is Shape.NONE else out

    def _reader(self, lease: AsyncLease, wire: Any, statement: Statement, binary: bool) -> Callable[[int, Any], Any]:
        """What reads a batch's results into values as the wire receives them, overlapping with the server's work on
        the next ones: each by the layout of its own prepared statement, or `_LATER` while that is not known."""
        plan, facts, key = self.plan, self.facts, lease.key
        fetch_kind, rows, fetchone = outcome.fetch_kind, outcome.rows, wire.fetchone

        def each(index: int, res: Any) -> Any:
            wire.use(index, res)
            layout = facts.layout(key, statement, res, binary, wire)[1]
            if layout is None:
                return _LATER
            kind = fetch_kind(plan, statement, res)
            return layout.one(fetchone()) if kind is ONE else rows(wire, layout, kind)

        return each

    async def _wire_rows(
        self, lease: AsyncLease, wire: Any, statement: Statement, binary: bool, read: tuple[list[Any], list[Any]]
    ) -> list[Any]:
        """What a batch the wire ran returns: the values read as they came (*read*: the results, and those values),
        and those whose layout had to be made (its first result: types to describe, perhaps) read now."""
        results, made = read
        for index, value in enumerate(made):
            if value is _LATER:
                res = results[index]
                wire.use(index, res)
                layout_key, layout = self.facts.layout(lease.key, statement, res, binary, wire)
                layout = layout or await self._layout(lease, statement, wire, binary, layout_key)
                kind = outcome.fetch_kind(self.plan, statement, res)
                made[index] = outcome.rows(wire, layout, kind)
        return made

    async def _stream(
        self, sess: AsyncState, lease: AsyncLease, statement: Statement, params: Any, binary: bool
    ) -> AsyncStream[Any]:
        if lease.tx is None and lease.conn.info.transaction_status == _IDLE:
            msg = (
                f"{self.plan.stub}: a stream reads through a server-side cursor, which needs a transaction, and an "
                f"autocommit session begins none; read it inside `{_WITH}transaction():`, or annotate `-> list[...]`"
            )
            raise Error(msg)
        cur = lease.server_cursor(f"pgdecor_{next(_cursor_names)}")
        try:
            await finish(cur.execute(statement.sql, params, binary=binary), statement_on=lease.conn)
            layout = await self._layout(lease, statement, cur, binary)
        except BaseException:
            await cur.close()
            raise
        return AsyncStream(self.plan.stub, cur, layout.many, sess.lock, sess.open_streams)

    async def _resolve(self, lease: AsyncLease) -> None:
        call = self.plan.call
        assert isinstance(call, ProcedureCall)  # a query's statement is always cached
        await probe.resolve(lease.conn, lease.key, call)

    async def _layout(
        self, lease: AsyncLease, statement: Statement, cur: Any, binary: bool, layout_key: LayoutKey | None = None
    ) -> Layout:
        """The layout of the cursor's current result (whose key the caller may have computed already); its types
        are described first if they must be."""
        mapper = self.plan.mapper(statement)
        if layout_key is None:
            layout_key = mapper.key(cur.pgresult, lease.key)
        layout = mapper.cached(layout_key)
        if layout is None:
            registry = registry_for(lease.key) if mapper.uses_registry else None
            if registry is not None:
                await probe.describe(lease.conn, registry, mapper.missing_types(cur.pgresult, registry))
            layout = mapper.build(layout_key, registry, cur.adapters)
        return self.facts.checked(lease.key, statement, layout, binary)

    if True:  # ASYNC

        def stream(self, args: tuple[Any, ...]) -> LazyAsyncStream:
            """What a plain ``def`` stub annotated ``-> AsyncIterator[T]`` returns: runs at its first ``anext``."""
            if self.plan.check is not None:
                self.plan.check(args)
            return LazyAsyncStream(lambda: self.call(args))


def _outside_transaction(plan: Plan, sess: AsyncState, call: str) -> None:
    """Raise before sending, unless *sess* runs calls outside a transaction block, as a procedure that ends
    transactions itself needs: the error PostgreSQL would give instead aborts the session's transaction."""
    if not sess.mode.autocommit:
        where = f"{sess!r} begins a transaction"
        fix = "call it in `session(..., autocommit=True)`"
    elif any(
        lease is not None and lease.conn.info.transaction_status != _IDLE for lease in (sess.lease, sess.replica_lease)
    ):
        where = "it is called inside `transaction()`"
        fix = "call it outside `transaction()`"
    else:
        return
    msg = (
        f"{plan.stub}{call} calls a procedure that ends transactions itself (`@procedure(autocommit=True)`), which "
        f"PostgreSQL allows only outside a transaction block, but {where}; {fix}; nothing was sent to the server"
    )
    raise NoSessionError(msg)


async def _retire(conn: Any) -> None:
    """Close *conn*, on which a cancel request may still arrive (see `Watchdog.done`): its pool replaces it."""
    with contextlib.suppress(Exception):
        await conn.close()


async def _execute_limited(conn: Any, cur: Any, sql: str, params: Any, limit: Limit) -> None:
    """Run *sql* on *cur* with what is left of *limit* as its statement timeout, in one round trip (see
    `_limits.deadlines`); without pipelines (libpq before 14), in autocommit, the watchdog alone bounds it."""
    ms = str(max(1, math.ceil(limit.left() * 1000)))
    own = conn.cursor()
    in_transaction = conn.info.transaction_status != _IDLE
    if not psycopg.Pipeline.is_supported():
        if in_transaction:
            await own.execute(deadlines.KEEP_AND_SET_TIMEOUT, [ms])
        await cur.execute(sql, params)
        if in_transaction:
            await own.execute(deadlines.RESTORE_TIMEOUT)
        return
    async with conn.pipeline():
        await own.execute(deadlines.KEEP_AND_SET_TIMEOUT if in_transaction else deadlines.SET_TIMEOUT, [ms])
        await cur.execute(sql, params)
        if in_transaction:
            await own.execute(deadlines.RESTORE_TIMEOUT)


if True:  # ASYNC

    async def _cursor_rows(cur: Any, layout: Layout, kind: int) -> Any:
        """As `outcome.rows`, from an async client-side cursor (whose fetches never wait for the server)."""
        if kind is ONE:
            return layout.one(await cur.fetchone())
        if kind is NONE:
            return None
        if kind is COUNT:
            return outcome.affected(cur.pgresult)
        assert kind is ALL
        out: list[Any] = []
        chunk = await cur.fetchmany(outcome.CHUNK)
        with outcome.collector_paused(len(chunk) == outcome.CHUNK):
            while chunk:
                out += layout.many(chunk)
                chunk = await cur.fetchmany(outcome.CHUNK)
        return out

else:
    _cursor_rows = outcome.rows
