"""The wire's protocol, written once and without I/O: generators that flush what was sent through libpq and read
what the server gives back, as psycopg's own (``psycopg.generators``).

Each waits as its `Waits` say (``yield from waits.reading()``), and gets back whether to read the socket now. For
the sync wire (`PSYCOPG`), a wait yields what it waits for as psycopg's generators do (`internals.WAIT_R`,
`WAIT_RW`), and gets what became ready: the connection's wait (psycopg's C poll loop) runs the generator, or, should
that wait have changed, the standard library's selectors (`_wire.fallback`). Anything but 0 sent back reads the
socket, so that no value psycopg's wait may send is misread. For the async wire (`_wire.watch.SocketWatch`), a wait
is a future of the event loop's, which its watch resolves once a whole result is in, read already: the generators
are generator-based coroutines, which the wire awaits, so that the event loop's task runs them itself. A connection
that breaks while one waits there is an error raised into it, where it waits.

A batch's results and a result read in chunks are read a run at a time (`executions`, `chunks`): each run of the
generator waits for the next result, then reads every one libpq holds already, and returns them; what it has read
so far is kept in a `BatchRead` or a `ChunksRead`. The wire gives each run to its caller, which makes values of it
while the server sends the rest: nothing here calls back up.
"""

from __future__ import annotations

import gc
import types
from collections.abc import Generator
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg import pq

from . import internals

__all__ = [
    "PSYCOPG",
    "BatchRead",
    "ChunksRead",
    "Reading",
    "Waits",
    "chunks",
    "executions",
    "notified",
    "piped",
    "rest",
    "results",
]

T = TypeVar("T")

#: A generator of waits that returns a *T* once it has read what it reads; what it is sent back is its runner's
#: (psycopg's ready values, or None from the event loop's task).
Reading = Generator[object, Any, T]

_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
_TUPLES_CHUNK = getattr(pq.ExecStatus, "TUPLES_CHUNK", -1)
#: The results after which libpq gives no None to end a statement's: a COPY's (it gives the same one again and
#: again), and a pipeline's Sync (alone in its group).
_LAST = (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH, _PIPELINE_SYNC)


class Waits(Protocol):
    """How the generators here wait on the connection's socket: until it is readable (`reading`), or readable or
    writable (`flushing`); what a wait gives back is whether to read the socket now."""

    def reading(self) -> Reading[object]: ...

    def flushing(self) -> Reading[object]: ...


class _Psycopg:
    """Waits as psycopg's wait runs them: its values for what to wait for, and what it says became ready."""

    __slots__ = ()

    def reading(self) -> Reading[object]:
        return (yield internals.WAIT_R)

    def flushing(self) -> Reading[object]:
        return (yield internals.WAIT_RW)


PSYCOPG: Waits = _Psycopg()


class BatchRead:
    """What reading a batch's pipeline has read so far: each execution's results, then the Sync's, in `groups`
    (*count* of them in all), and whether an execution failed (or gave no result); and, where the pipeline begins
    with a BEGIN (`begin`, set by its sender), its results first, kept apart in `begun`."""

    __slots__ = ("begin", "begun", "count", "failed", "group", "groups")

    def __init__(self, count: int) -> None:
        self.count = count
        self.groups: list[list[pq.abc.PGresult]] = []
        #: The results of the execution being read.
        self.group: list[pq.abc.PGresult] = []
        self.failed = False
        self.begin = False
        self.begun: list[pq.abc.PGresult] = []

    @property
    def done(self) -> bool:
        return len(self.groups) >= self.count


class ChunksRead:
    """What reading a result in chunks has read so far: its last result (the empty end of the rows, or the error),
    and whether its Sync is in (`done`). While the chunks it gave are made into values, the cyclic garbage collector
    is paused (as in `_outcome.collector_paused`, and for the same reason); it is resumed whenever the read waits
    for the server, so that a slow result never keeps it paused for others, and at its end (`resume`)."""

    __slots__ = ("done", "last", "paused")

    def __init__(self) -> None:
        self.last: pq.abc.PGresult | None = None
        self.done = False
        self.paused = False

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            gc.enable()


def _flushing(pgconn: pq.abc.PGconn, waits: Waits) -> Reading[None]:
    """The rest of a flush that did not send everything at once (parameters larger than the socket's buffer),
    reading what the server sends meanwhile."""
    while True:
        if (yield from waits.flushing()):
            pgconn.consume_input()
        if not pgconn.flush():
            return


def _broken_after_error(err: psycopg.DatabaseError, *read: list[pq.abc.PGresult]) -> None:
    """Where the connection broke (*err*) while a read waited for a whole result: nothing if the server had sent an
    error among *read* (the results read so far), so that the read ends there and the server's error is what the
    call raises; else *err*, raised."""
    if not any(res.status == _FATAL_ERROR for each in read for res in each):
        raise err


def results(pgconn: pq.abc.PGconn, waits: Waits) -> Reading[list[pq.abc.PGresult]]:
    """Flush a statement sent, and read every result it gives, by psycopg's rules (``generators.execute``): up to the
    statement's end, a COPY or a pipeline's Sync; a connection that breaks once the server has sent an error ends
    the read, so that the server's error is what the call raises. Notifications that came with them go to the
    connection's handler."""
    if pgconn.flush():
        yield from _flushing(pgconn, waits)
    out: list[pq.abc.PGresult] = []
    while True:
        try:
            while pgconn.is_busy():  # until a whole result is in
                if (yield from waits.reading()):
                    pgconn.consume_input()
        except psycopg.DatabaseError as err:
            _broken_after_error(err, out)
            break
        res = pgconn.get_result()
        if res is None:
            break
        out.append(res)
        if res.status in _LAST:
            break
    if n := pgconn.notifies():
        notified(pgconn, n)
    return out


def piped(pgconn: pq.abc.PGconn, waits: Waits, count: int) -> Reading[list[list[pq.abc.PGresult]]]:
    """Flush *count* statements sent in a pipeline, then a Sync, and read what they give up to the Sync's result:
    each statement's results (an error result for one the server skipped after an error before it). A connection
    that breaks once the server has sent an error ends the read, as in `results`. Notifications that came with them
    go to the connection's handler."""
    if pgconn.flush():
        yield from _flushing(pgconn, waits)
    groups: list[list[pq.abc.PGresult]] = []
    group: list[pq.abc.PGresult] = []
    while True:
        try:
            while pgconn.is_busy():  # until a whole result is in
                if (yield from waits.reading()):
                    pgconn.consume_input()
        except psycopg.DatabaseError as err:
            _broken_after_error(err, group, *groups)
            groups.append(group)
            break
        res = pgconn.get_result()
        if res is None:
            groups.append(group)
            group = []
        elif res.status == _PIPELINE_SYNC:
            break
        else:
            group.append(res)
    if n := pgconn.notifies():
        notified(pgconn, n)
    if len(groups) < count:  # a read ended by a broken connection
        groups.extend([] for _ in range(count - len(groups)))
    return groups


def executions(pgconn: pq.abc.PGconn, read: BatchRead, waits: Waits) -> Reading[list[tuple[int, pq.abc.PGresult]]]:
    """The next results of the batch *read*: flush what is left to send, wait until an execution's results are all
    in, then read every one libpq holds already, without waiting again. Gives each of them that succeeded as its
    index and its result, for them to be made into values while the server works on the next ones; one that did
    not (an error, or no result at all) marks the read `failed`."""
    if pgconn.flush():
        yield from _flushing(pgconn, waits)
    out: list[tuple[int, pq.abc.PGresult]] = []
    groups, group, count, begin = read.groups, read.group, read.count, read.begin
    n = len(groups)
    is_busy, get_result = pgconn.is_busy, pgconn.get_result
    while n < count:
        if is_busy():
            if out:
                break
            if (yield from waits.reading()):
                pgconn.consume_input()
            continue
        res = get_result()
        if res is not None and not (group or begin) and res.status in _OK and not is_busy():
            # The usual: an execution's one result, then (at once, in pipeline mode) the end of its results.
            end = get_result()
            if end is None:
                out.append((n, res))
                groups.append([res])
                n += 1
                continue
            group.append(res)  # more than one: read as any
            res = end
        if res is not None:
            if res.status == _PIPELINE_SYNC:
                groups.append([res])
                n += 1
            else:
                group.append(res)
        elif begin:  # the end of BEGIN's results: the executions' come next
            read.begin = begin = False
            read.begun = group
            read.group = group = []
        else:  # the end of an execution's results
            if group and group[0].status in _OK:
                out.append((n, group[0]))
            else:
                read.failed = True
            groups.append(group)
            n += 1
            read.group = group = []
    return out


def chunks(pgconn: pq.abc.PGconn, read: ChunksRead, waits: Waits) -> Reading[list[pq.abc.PGresult]]:
    """The next chunks of rows of a statement sent in chunked rows mode, in a pipeline of its own, whose read so far
    is *read*: flush what is left to send, wait until a chunk is in, then read every one libpq holds already, without
    waiting again, up to the pipeline's Sync (the statement's last result kept in *read*)."""
    if pgconn.flush():
        yield from _flushing(pgconn, waits)
    out: list[pq.abc.PGresult] = []
    while not read.done:
        if pgconn.is_busy():
            if out:
                break
            read.resume()
            if (yield from waits.reading()):
                pgconn.consume_input()
            continue
        res = pgconn.get_result()
        if res is None:  # the end of the statement's results: its Sync comes next
            continue
        status = res.status
        if status == _TUPLES_CHUNK:
            out.append(res)
        elif status == _PIPELINE_SYNC:
            read.done = True
            if n := pgconn.notifies():
                notified(pgconn, n)
        elif read.last is None:
            read.last = res
    if out and not read.paused and gc.isenabled():
        read.paused = True
        gc.disable()
    return out


def rest(pgconn: pq.abc.PGconn, waits: Waits) -> Reading[None]:
    """Read what is left of the results of the statements sent, and drop it: in pipeline mode, up to its Sync (the
    pipeline can be left then); else up to the statement's end (`results`)."""
    if pgconn.pipeline_status == pq.PipelineStatus.OFF:
        yield from results(pgconn, waits)
        return
    if pgconn.flush():
        yield from _flushing(pgconn, waits)
    ended = False
    while True:
        while pgconn.is_busy():
            if (yield from waits.reading()):
                pgconn.consume_input()
        res = pgconn.get_result()
        if res is None:
            if ended:  # a second end in a row: nothing is left to read
                return
            ended = True
        elif res.status == _PIPELINE_SYNC:
            return
        else:
            ended = False


def notified(pgconn: pq.abc.PGconn, n: pq.PGnotify | None) -> None:
    """Hand *n*, a notification that came with a result, and those after it to the connection's handler, as
    psycopg's reads do (which drop them when there is none). Called when ``pgconn.notifies()`` gave one."""
    while n:
        if pgconn.notify_handler:
            pgconn.notify_handler(n)
        n = pgconn.notifies()


# Awaitable too (generator-based coroutines, changed in place): the async wire awaits them.
for _reading in (results, piped, executions, chunks, rest):
    types.coroutine(_reading)
