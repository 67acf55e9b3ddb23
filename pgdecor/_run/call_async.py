"""A stub's calls in an async session (`AsyncCalls`): steps 2 to 7 of the path drawn in `_run.runner_async`, all in
`AsyncCalls.run`, for every call of a stub: its first on a server and its first on a connection as much as the ones
after them, which find what those learnt in the stub's `Route`. A call given a time limit (a stub's ``timeout=``, a
session's deadline) goes it through a cursor, watched; a stub that declares errors (``errors=``), in a savepoint of
its own (`AsyncCalls._guarded`, which runs `AsyncCalls.run` inside them).

This is the async source; `_run.call` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor, pq
from psycopg_pool import PoolTimeout

from pgdecor._errors import NoSessionError
from pgdecor._limits import deadlines
from pgdecor._limits.deadlines import Limit, limit_for, watchdog
from pgdecor._plan.plan import Plan
from pgdecor._plan.results import Shape
from pgdecor._rows.json_load import too_deep
from pgdecor._rows.layouts import Layout
from pgdecor._session.begin_async import beginning
from pgdecor._session.current import current_session
from pgdecor._session.lease_async import AsyncLease
from pgdecor._session.scope_async import alease_for
from pgdecor._session.state import AsyncState
from pgdecor._wire.reads_async import AsyncChunks
from pgdecor._wire.shield import finish
from pgdecor._wire.wire_async import AsyncWire

from . import lookup_async as lookup
from . import outcome
from .join import LATER, joined
from .outcome import ALL, COUNT, NONE, ONE, rows
from .routes import Prepared, Route, Routes
from .stream_async import opened

__all__ = ["AsyncCalls", "cursor_rows", "outside_transaction"]

_IDLE = psycopg.pq.TransactionStatus.IDLE
_INERROR = psycopg.pq.TransactionStatus.INERROR

#: What `AsyncCalls._chunked` gives when the wire sent nothing.
_LATER = object()
#: What a cursor's result is looked up by: no prepared statement (see `Route.layouts`).
_UNNAMED: Prepared = (None, None)

#: The savepoint of a call whose declared errors undo it alone (see `AsyncCalls._in_savepoint`).
_SAVEPOINT = "SAVEPOINT pgdecor_call"
_RELEASE = "RELEASE SAVEPOINT pgdecor_call"
_UNDO = "ROLLBACK TO SAVEPOINT pgdecor_call; RELEASE SAVEPOINT pgdecor_call"


class AsyncCalls:
    """Runs one plan's calls (see the module docstring)."""

    __slots__ = ("_guarded_always", "_streams", "plan", "routes")

    def __init__(self, plan: Plan, routes: Routes) -> None:
        self.plan, self.routes = plan, routes
        #: Whether every call goes through `_guarded`: it ends transactions itself, or declares errors.
        self._guarded_always = plan.autocommit or bool(plan.errors)
        #: Whether a call opens a stream (`_run.stream_async.opened`) rather than reads its result.
        self._streams = plan.result.shape is Shape.STREAM

    async def run(self, args: tuple[Any, ...], held: AsyncState | None = None, limit: Limit | None = None) -> Any:
        """A call with the arguments *args* (as the generated caller packs them): the path of every call (see
        `_run.runner_async`), in the session of the context, whose lock it takes. Inside `_guarded`, in the
        session *held*, whose lock is held already, and, given *limit*, through a cursor, in its time."""
        plan = self.plan
        if held is None:
            if plan.check is not None:
                plan.check(args)
            sess = current_session(plan.stub, "()", is_async=True)
            lock = sess.lock  # taken in the call's own frame (async: its own coroutine, none more per call)
            if True:  # ASYNC
                if (
                    lock.locked()
                    and not (self._guarded_always or self._streams)
                    and (value := await joined(plan, self.routes, sess, args)) is not LATER
                ):
                    return value
                if not lock.take():  # free: taken at once, no coroutine
                    await lock.acquire()
            else:
                await lock.acquire()
        else:
            sess, lock = held, None
        try:
            if lock is not None and (
                (deadlines.armed.on and (limit := limit_for(plan.stub, plan.sql_object, plan.timeout, sess)))
                or self._guarded_always
            ):
                return await self._guarded(args, sess, limit)
            routes = self.routes
            # A borrow of the call's own leaves the connection's check to its statement (`_wire.owed`): paid by the
            # BEGIN sent with it (the wire's, or a cursor's: `beginning`), or made (`settle`) before anything else.
            lease: AsyncLease = sess.lease or await alease_for(sess, readonly=plan.readonly, owing=True)
            route = routes.get(lease.key) if routes.fixed else routes.find(lease.key, args)
            try:
                if route is None:
                    route = await lookup.route(lease, routes, args)
                params = args if route.params is None else route.params(args)
                if self._streams:
                    await lease.settle()
                    return await opened(plan.stub, sess, lease, route, params)
                binary = route.binary
                wire = lease.wire() if route.wired and limit is None else None
                src: AsyncWire | AsyncCursor[Any] | None = None
                prepared = _UNNAMED
                if wire is not None:
                    if lease.owing and not lease.pending:  # no BEGIN goes with the statement to pay the check
                        await lease.settle()
                    joinable = False
                    if True:  # ASYNC
                        if lock is not None:  # calls waiting for a pipeline to join: this one's
                            joinable = lock.sending() and not lease.savepoints
                    if route.large:
                        value = await self._chunked(lease, wire, route, params)
                        if value is not _LATER:
                            return value
                    elif await wire.execute(route.sql, params, binary, joinable=joinable):
                        src, prepared = wire, (wire.manager, wire.name)
                if src is None:  # the check the connection is owed made first, or paid by the BEGIN sent with it
                    binary = binary and lease.binary
                    src = cur = lease.cursor(binary)
                    if limit is not None:
                        await lease.settle()
                        await finish(
                            _execute_limited(lease.conn, cur, route.sql, params, limit), statement_on=lease.conn
                        )
                    else:  # where the wire sent nothing, psycopg had not prepared the statement: it does, for next time
                        prepare = None if wire is None else True
                        await finish(
                            beginning(lease, cur.execute, route.sql, params, prepare=prepare), statement_on=lease.conn
                        )
                    route.wired = True
                kind = route.kind
                if kind is None:
                    return None
                res = src.pgresult
                how = kind(res)
                layout = route.layouts.get(prepared) or await lookup.layout(lease, route, src, binary, prepared)
                if how is ALL and res is not None:
                    route.read_whole(res.ntuples)
                if True:  # ASYNC
                    if not isinstance(src, AsyncWire):
                        return await cursor_rows(src, layout, how)
                if how is ONE:  # the usual single row, without a call more
                    row: Any = src.fetchone()
                    return layout.one(row)
                return rows(src, layout, how)
            except psycopg.Error as err:
                raise outcome.db_error(plan, err, None if route is None else route.statement)  # noqa: B904 - it sets the cause
        except RecursionError:
            raise too_deep(plan.stub) from None
        finally:
            if lock is not None:
                lock.release()

    async def _guarded(self, args: tuple[Any, ...], sess: AsyncState, limit: Limit | None) -> Any:
        """A call of a stub that ends transactions itself, or declares errors, or that is given *limit*: its path
        (`run`) inside what that takes, in the session *sess*, whose lock is held."""
        if self.plan.autocommit:
            outside_transaction(self.plan, sess, "()")
        if limit is not None:
            return await self._limited(args, sess, limit)
        if self.plan.errors:
            return await self._in_savepoint(args, sess, None)
        return await self.run(args, sess)

    async def _limited(self, args: tuple[Any, ...], sess: AsyncState, limit: Limit) -> Any:
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
            result = await (self._in_savepoint if self.plan.errors else self.run)(args, sess, limit)
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

    async def _in_savepoint(self, args: tuple[Any, ...], sess: AsyncState, limit: Limit | None) -> Any:
        """A call of a stub that declares errors (``errors=``), in a savepoint of its own: one of those errors
        undoes the call alone, so that code which catches it can go on and commit the rest of the session. Any
        other error leaves the transaction failed, as it would without the savepoint."""
        lease: AsyncLease = sess.lease or await alease_for(sess, readonly=self.plan.readonly)
        if lease.tx is None:  # autocommit: the call is a transaction of its own already
            return await self.run(args, sess, limit)
        conn = lease.conn
        await finish(conn.execute(_SAVEPOINT), statement_on=conn)
        try:
            result = await self.run(args, sess, limit)
        except BaseException as err:
            cause = err.__cause__
            declared = isinstance(cause, psycopg.Error) and (cause.sqlstate or "") in self.plan.errors
            if declared and conn.info.transaction_status == _INERROR:
                await finish(conn.execute(_UNDO), statement_on=conn)
            raise
        await finish(conn.execute(_RELEASE), statement_on=conn)
        return result

    async def _chunked(self, lease: AsyncLease, wire: AsyncWire, route: Route, params: Sequence[Any]) -> Any:
        """A call whose result is read in chunks as they come, each made into values while the server sends the
        next (`_wire.reads_async.AsyncChunks`): for a statement whose last result was large. `_LATER` if the wire sent
        nothing. The chunks that come before their layout is known (a new prepared statement's, whose types may
        have to be described) are read once the whole result is in; what cannot be made into a value raises then
        too, so that the connection goes on serving the session."""
        key, binary, layouts = lease.key, route.binary, route.layouts
        out: list[Any] = []
        later: list[pq.abc.PGresult] = []
        many: Callable[[list[Any]], list[Any]] | None = None  # the chunks' layout, once known
        fetchmany, use_chunk = wire.fetchmany, wire.use_chunk
        failed: Exception | None = None
        async with AsyncChunks(wire, route.sql, params, binary) as read:
            if read is None:
                return _LATER
            async for ready in read:
                if failed is not None:
                    continue
                try:
                    for res in ready:
                        use_chunk(res, first=many is None)
                        if many is None and not later:
                            prepared = (wire.manager, wire.name)
                            found = layouts.get(prepared) or route.layout(res, key, binary, prepared)[1]
                            many = None if found is None else found.many
                        if many is None:
                            later.append(res)
                        else:
                            out.extend(many(fetchmany(res.ntuples)))
                except Exception as err:  # noqa: BLE001 - raised once the result is read
                    failed = err
        if failed is not None:
            raise failed
        end = read.end
        assert end is not None  # read to its end
        kind = route.kind
        assert kind is not None  # a large result was one of rows
        how = kind(end)  # raises if it has no rows to give
        if not out and not later:  # no rows at all: the columns are checked all the same
            later.append(end)
        if later:
            wire.use_chunk(later[0], first=True)
            layout = await lookup.layout(lease, route, wire, binary, (wire.manager, wire.name))
            for i, res in enumerate(later):
                wire.use_chunk(res, first=i == 0)
                out += rows(wire, layout, how)
        route.read_whole(len(out))
        return out


def outside_transaction(plan: Plan, sess: AsyncState, call: str) -> None:
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


async def _retire(conn: AsyncConnection[Any]) -> None:
    """Close *conn*, on which a cancel request may still arrive (see `Watchdog.done`): its pool replaces it."""
    with contextlib.suppress(Exception):
        await conn.close()


async def _execute_limited(
    conn: AsyncConnection[Any], cur: AsyncCursor[Any], sql: str, params: Sequence[Any], limit: Limit
) -> None:
    """Run *sql* on *cur* with what is left of *limit* as its statement timeout, in one round trip (see
    `_limits.deadlines`); without pipelines (libpq before 14), in autocommit, the watchdog alone bounds it."""
    ms = str(max(1, math.ceil(limit.left() * 1000)))
    own = conn.cursor()
    # Out of autocommit, an idle connection begins a transaction with this statement.
    in_transaction = conn.info.transaction_status != _IDLE or not conn.autocommit
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

    async def cursor_rows(cur: AsyncCursor[Any], layout: Layout, kind: int) -> Any:
        """As `outcome.rows`, from an async client-side cursor (whose fetches never wait for the server)."""
        if kind is ONE:
            row: Any = await cur.fetchone()
            return layout.one(row)
        if kind is NONE:
            return None
        if kind is COUNT:
            res = cur.pgresult
            assert res is not None  # `Route.kind` saw it
            return outcome.affected(res)
        assert kind is ALL
        out: list[Any] = []
        chunk = await cur.fetchmany(outcome.CHUNK)
        with outcome.collector_paused(len(chunk) == outcome.CHUNK):
            while chunk:
                out += layout.many(chunk)
                chunk = await cur.fetchmany(outcome.CHUNK)
        return out

else:
    cursor_rows = outcome.rows
