"""Running a plan in async sessions (`AsyncRunner`, what a stub's generated caller calls): its calls, its batches
(``.many()``) and its streams, sharing what they learn of each server (`_run.routes`).

The path of one call is the same for a stub's first call on a server, its first on a connection and every later one
(what the calls before it learnt is looked up, never a way of its own):

1. `AsyncRunner.call`: in a span where calls are traced (`_run.trace`), timed where a slow-call threshold exists
   (`_limits.slow`), logged at DEBUG;
2. `AsyncCalls.run` (`_run.call_async`): the arguments checked, the session found, its lock taken (a call given a
   time limit, or of a stub that declares errors, goes on inside a watchdog, or a savepoint: `AsyncCalls._guarded`);
3. the session's lease (borrowed at its first call), and the stub's `Route` on its server in one lookup (made at the
   stub's first call there, its function resolved from the catalog: `_run.lookup_async`);
4. the statement sent in the route's result format: through the lease's `Wire` once it has run on the server
   (psycopg's prepared statement executed directly; a large result read in chunks as it comes); else, and where
   psycopg has not prepared it on the connection yet (the wire sends nothing), through the lease's cursor, which
   has psycopg prepare it for the next call;
5. how the result is fetched (`Route.kind`: one row, every row, none, or a command's count), raising for a row
   count the stub does not allow;
6. the result's layout: by its prepared statement (one lookup), else by its columns, else built (its types described
   from the catalog first), learnt by the route, which asks for binary from then on where it can;
7. the call's value, made of the rows by the layout.

A batch (`_run.batch_async`) goes the same way a run of calls at a time, pipelined by the wire; a stream
(`_run.stream_async`) up to the layout, through a server-side cursor.

This is the async source; `_run.runner` (`Runner`, for sync stubs) is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from collections.abc import Callable
from logging import DEBUG
from time import perf_counter
from typing import Any

from pgdecor._counters import counters
from pgdecor._limits import slow
from pgdecor._plan.plan import Plan
from pgdecor._rows.registry import ServerKey
from pgdecor._session.current import current

from . import outcome, trace
from .batch_async import AsyncBatches
from .call_async import AsyncCalls
from .routes import Routes
from .stream_async import AsyncBatchStream, LazyAsyncStream, Server

__all__ = ["AsyncRunner"]

_log_enabled = outcome.logger.isEnabledFor


class AsyncRunner:
    """Runs one plan's calls, batches and streams (see the module docstring)."""

    __slots__ = ("_batch", "_call", "_names", "plan", "routes")

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.routes = Routes(plan)
        self._names = tuple(p.name for p in plan.params)
        self._call: Callable[[tuple[Any, ...]], Any] = AsyncCalls(plan, self.routes).run
        self._batch: Callable[[list[tuple[Any, ...]]], Any] = AsyncBatches(plan, self.routes).run

    def call(self, args: tuple[Any, ...]) -> Any:
        """A call (the generated caller's target). In async, a plain function handing back the coroutine: one
        coroutine layer less on every call."""
        if trace.settings.on and trace.recording():
            return self._traced(args, None)
        if slow.armed.on:
            return self._timed(args)
        return self._call(args) if not _log_enabled(DEBUG) else self._logged(args)

    async def many(self, argsets: list[tuple[Any, ...]]) -> Any:
        """Run the call once per argument tuple, pipelined: one round trip for the whole batch."""
        if trace.settings.on and trace.recording():
            return await self._traced((), argsets)
        return await self._batch(argsets)

    if True:  # ASYNC

        def stream(self, args: tuple[Any, ...]) -> LazyAsyncStream:
            """What a plain ``def`` stub annotated ``-> AsyncIterator[T]`` returns: runs at its first ``anext``."""
            if self.plan.check is not None:
                self.plan.check(args)
            return LazyAsyncStream(lambda: self.call(args))

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
            route = None if lease is None else self.routes.find(lease.key, args)
            sql = self.plan.sql_object if route is None else route.sql
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
        traced = trace.start(self.routes.operation(sample, None), extra)
        try:
            result = await self._untraced(args, argsets)
        except BaseException as err:
            traced.end(self._reached(traced, sample), err)
            raise
        server = self._reached(traced, sample)
        if isinstance(result, AsyncBatchStream):
            traced.detach()
            result.traced(traced, server)
        else:
            traced.end(server, None)
        return result

    async def _untraced(self, args: tuple[Any, ...], argsets: list[tuple[Any, ...]] | None) -> Any:
        if argsets is not None:
            return await self._batch(argsets)
        if slow.armed.on:
            return await self._timed(args)
        return await (self._call(args) if not _log_enabled(DEBUG) else self._logged(args))

    def _reached(self, traced: trace.Call, args: tuple[Any, ...]) -> Server | None:
        """The server the call reached (None if none), once *traced* is named for the statement it ran there."""
        sess = current.get()
        lease = None if sess is None else sess.lease or sess.replica_lease
        if lease is None:
            return None
        key: ServerKey = lease.key
        operation = self.routes.operation(args, key)
        if operation is not traced.operation:
            traced.rename(operation)
        return key[:3]
