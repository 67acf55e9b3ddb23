# Generated from pgdecor/_run/call_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._run.call_async`, generated from it: see there."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import Connection, Cursor, pq
from psycopg_pool import PoolTimeout

from pgdecor._errors import NoSessionError
from pgdecor._limits import deadlines
from pgdecor._limits.deadlines import Limit, limit_for, watchdog
from pgdecor._plan.plan import Plan
from pgdecor._plan.results import Shape
from pgdecor._rows.json_load import too_deep
from pgdecor._session.begin import beginning
from pgdecor._session.current import current_session
from pgdecor._session.lease import Lease
from pgdecor._session.scope import lease_for
from pgdecor._session.state import SyncState
from pgdecor._wire.reads import Chunks
from pgdecor._wire.wire import Wire

from . import lookup, outcome
from .outcome import ALL, ONE, rows
from .routes import Prepared, Route, Routes
from .stream import opened

__all__ = ["Calls", "cursor_rows", "outside_transaction"]

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


class Calls:
    """Runs one plan's calls (see the module docstring)."""

    __slots__ = ("_guarded_always", "_streams", "plan", "routes")

    def __init__(self, plan: Plan, routes: Routes) -> None:
        self.plan, self.routes = plan, routes
        #: Whether every call goes through `_guarded`: it ends transactions itself, or declares errors.
        self._guarded_always = plan.autocommit or bool(plan.errors)
        #: Whether a call opens a stream (`_run.stream_async.opened`) rather than reads its result.
        self._streams = plan.result.shape is Shape.STREAM

    def run(self, args: tuple[Any, ...], held: SyncState | None = None, limit: Limit | None = None) -> Any:
        """A call with the arguments *args* (as the generated caller packs them): the path of every call (see
        `_run.runner_async`), in the session of the context, whose lock it takes. Inside `_guarded`, in the
        session *held*, whose lock is held already, and, given *limit*, through a cursor, in its time."""
        plan = self.plan
        if held is None:
            if plan.check is not None:
                plan.check(args)
            sess = current_session(plan.stub, "()", is_async=False)
            lock = sess.lock  # taken in the call's own frame (async: its own coroutine, none more per call)
            lock.acquire()
        else:
            sess, lock = held, None
        try:
            if lock is not None and (
                (deadlines.armed.on and (limit := limit_for(plan.stub, plan.sql_object, plan.timeout, sess)))
                or self._guarded_always
            ):
                return self._guarded(args, sess, limit)
            routes = self.routes
            # A borrow of the call's own leaves the connection's check to its statement (`_wire.owed`): paid by the
            # BEGIN sent with it (the wire's, or a cursor's: `beginning`), or made (`settle`) before anything else.
            lease: Lease = sess.lease or lease_for(sess, readonly=plan.readonly, owing=True)
            route = routes.get(lease.key) if routes.fixed else routes.find(lease.key, args)
            try:
                if route is None:
                    route = lookup.route(lease, routes, args)
                params = args if route.params is None else route.params(args)
                if self._streams:
                    lease.settle()
                    return opened(plan.stub, sess, lease, route, params)
                binary = route.binary
                wire = lease.wire() if route.wired and limit is None else None
                src: Wire | Cursor[Any] | None = None
                prepared = _UNNAMED
                if wire is not None:
                    if lease.owing and not lease.pending:  # no BEGIN goes with the statement to pay the check
                        lease.settle()
                    joinable = False
                    if route.large:
                        value = self._chunked(lease, wire, route, params)
                        if value is not _LATER:
                            return value
                    elif wire.execute(route.sql, params, binary, joinable=joinable):
                        src, prepared = wire, (wire.manager, wire.name)
                if src is None:  # the check the connection is owed made first, or paid by the BEGIN sent with it
                    binary = binary and lease.binary
                    src = cur = lease.cursor(binary)
                    if limit is not None:
                        lease.settle()
                        _execute_limited(lease.conn, cur, route.sql, params, limit)
                    else:  # where the wire sent nothing, psycopg had not prepared the statement: it does, for next time
                        prepare = None if wire is None else True
                        beginning(lease, cur.execute, route.sql, params, prepare=prepare)
                    route.wired = True
                kind = route.kind
                if kind is None:
                    return None
                res = src.pgresult
                how = kind(res)
                layout = route.layouts.get(prepared) or lookup.layout(lease, route, src, binary, prepared)
                if how is ALL and res is not None:
                    route.read_whole(res.ntuples)
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

    def _guarded(self, args: tuple[Any, ...], sess: SyncState, limit: Limit | None) -> Any:
        """A call of a stub that ends transactions itself, or declares errors, or that is given *limit*: its path
        (`run`) inside what that takes, in the session *sess*, whose lock is held."""
        if self.plan.autocommit:
            outside_transaction(self.plan, sess, "()")
        if limit is not None:
            return self._limited(args, sess, limit)
        if self.plan.errors:
            return self._in_savepoint(args, sess, None)
        return self.run(args, sess)

    def _limited(self, args: tuple[Any, ...], sess: SyncState, limit: Limit) -> Any:
        """A call given *limit*: its statement through a cursor, in a pipeline that sets its statement timeout
        (see `_limits.deadlines`), and watched, should its server not answer. None of it is sent once the limit has
        passed."""
        lease: Lease | None = sess.lease
        if lease is None:
            try:
                lease = lease_for(sess, readonly=self.plan.readonly, within=limit.left())
            except PoolTimeout as err:
                if limit.remaining() > 0:  # the pool's own timeout, not the call's limit
                    raise
                raise limit.error("no connection of its pool was free in time, so nothing was sent") from err
        watch = watchdog.watch(lease.conn, limit.left())
        try:
            result = (self._in_savepoint if self.plan.errors else self.run)(args, sess, limit)
        except BaseException as err:
            if watchdog.done(watch):
                _retire(lease.conn)
            mine = limit.ours(err, watch) if isinstance(err, Exception) else None
            if mine is None:
                raise
            cause = err if isinstance(err, psycopg.Error) else err.__cause__
            raise mine from cause
        if watchdog.done(watch):
            _retire(lease.conn)
            raise limit.late()
        return result

    def _in_savepoint(self, args: tuple[Any, ...], sess: SyncState, limit: Limit | None) -> Any:
        """A call of a stub that declares errors (``errors=``), in a savepoint of its own: one of those errors
        undoes the call alone, so that code which catches it can go on and commit the rest of the session. Any
        other error leaves the transaction failed, as it would without the savepoint."""
        lease: Lease = sess.lease or lease_for(sess, readonly=self.plan.readonly)
        if lease.tx is None:  # autocommit: the call is a transaction of its own already
            return self.run(args, sess, limit)
        conn = lease.conn
        conn.execute(_SAVEPOINT)
        try:
            result = self.run(args, sess, limit)
        except BaseException as err:
            cause = err.__cause__
            declared = isinstance(cause, psycopg.Error) and (cause.sqlstate or "") in self.plan.errors
            if declared and conn.info.transaction_status == _INERROR:
                conn.execute(_UNDO)
            raise
        conn.execute(_RELEASE)
        return result

    def _chunked(self, lease: Lease, wire: Wire, route: Route, params: Sequence[Any]) -> Any:
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
        with Chunks(wire, route.sql, params, binary) as read:
            if read is None:
                return _LATER
            for ready in read:
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
            layout = lookup.layout(lease, route, wire, binary, (wire.manager, wire.name))
            for i, res in enumerate(later):
                wire.use_chunk(res, first=i == 0)
                out += rows(wire, layout, how)
        route.read_whole(len(out))
        return out


def outside_transaction(plan: Plan, sess: SyncState, call: str) -> None:
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


def _retire(conn: Connection[Any]) -> None:
    """Close *conn*, on which a cancel request may still arrive (see `Watchdog.done`): its pool replaces it."""
    with contextlib.suppress(Exception):
        conn.close()


def _execute_limited(conn: Connection[Any], cur: Cursor[Any], sql: str, params: Sequence[Any], limit: Limit) -> None:
    """Run *sql* on *cur* with what is left of *limit* as its statement timeout, in one round trip (see
    `_limits.deadlines`); without pipelines (libpq before 14), in autocommit, the watchdog alone bounds it."""
    ms = str(max(1, math.ceil(limit.left() * 1000)))
    own = conn.cursor()
    # Out of autocommit, an idle connection begins a transaction with this statement.
    in_transaction = conn.info.transaction_status != _IDLE or not conn.autocommit
    if not psycopg.Pipeline.is_supported():
        if in_transaction:
            own.execute(deadlines.KEEP_AND_SET_TIMEOUT, [ms])
        cur.execute(sql, params)
        if in_transaction:
            own.execute(deadlines.RESTORE_TIMEOUT)
        return
    with conn.pipeline():
        own.execute(deadlines.KEEP_AND_SET_TIMEOUT if in_transaction else deadlines.SET_TIMEOUT, [ms])
        cur.execute(sql, params)
        if in_transaction:
            own.execute(deadlines.RESTORE_TIMEOUT)


cursor_rows = outcome.rows
