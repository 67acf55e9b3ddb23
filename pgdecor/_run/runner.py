# Generated from pgdecor/_run/runner_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._run.runner_async`, generated from it: see there."""

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
from .batch import Batches
from .call import Calls
from .routes import Routes
from .stream import BatchStream, Server

__all__ = ["Runner"]

_log_enabled = outcome.logger.isEnabledFor


class Runner:
    """Runs one plan's calls, batches and streams (see the module docstring)."""

    __slots__ = ("_batch", "_call", "_names", "plan", "routes")

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.routes = Routes(plan)
        self._names = tuple(p.name for p in plan.params)
        self._call: Callable[[tuple[Any, ...]], Any] = Calls(plan, self.routes).run
        self._batch: Callable[[list[tuple[Any, ...]]], Any] = Batches(plan, self.routes).run

    def call(self, args: tuple[Any, ...]) -> Any:
        """A call (the generated caller's target). In async, a plain function handing back the coroutine: one
        coroutine layer less on every call."""
        if trace.settings.on and trace.recording():
            return self._traced(args, None)
        if slow.armed.on:
            return self._timed(args)
        return self._call(args) if not _log_enabled(DEBUG) else self._logged(args)

    def many(self, argsets: list[tuple[Any, ...]]) -> Any:
        """Run the call once per argument tuple, pipelined: one round trip for the whole batch."""
        if trace.settings.on and trace.recording():
            return self._traced((), argsets)
        return self._batch(argsets)

    def _timed(self, args: tuple[Any, ...]) -> Any:
        """A call whose duration is compared with its threshold, if it has one (see `_limits.slow`)."""
        start = perf_counter()
        result = self._call(args) if not _log_enabled(DEBUG) else self._logged(args)
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

    def _logged(self, args: tuple[Any, ...]) -> Any:
        start = perf_counter()
        try:
            return self._call(args)
        finally:
            outcome.log(self.plan, start)

    def _traced(self, args: tuple[Any, ...], argsets: list[tuple[Any, ...]] | None) -> Any:
        """A call, or with *argsets* a batch, in a span of its own (see `_run.trace`); a stream's span ends with it."""
        sample = argsets[0] if argsets else args
        if argsets is None:
            extra = trace.parameters(self._names, args)
        else:
            extra = {"db.operation.batch.size": len(argsets)} if len(argsets) > 1 else None
        traced = trace.start(self.routes.operation(sample, None), extra)
        try:
            result = self._untraced(args, argsets)
        except BaseException as err:
            traced.end(self._reached(traced, sample), err)
            raise
        server = self._reached(traced, sample)
        if isinstance(result, BatchStream):
            traced.detach()
            result.traced(traced, server)
        else:
            traced.end(server, None)
        return result

    def _untraced(self, args: tuple[Any, ...], argsets: list[tuple[Any, ...]] | None) -> Any:
        if argsets is not None:
            return self._batch(argsets)
        if slow.armed.on:
            return self._timed(args)
        return self._call(args) if not _log_enabled(DEBUG) else self._logged(args)

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
