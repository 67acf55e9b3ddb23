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
"""

from __future__ import annotations

import gc
import types
from collections.abc import Callable, Generator
from typing import Any, NamedTuple, Protocol, TypeVar

import psycopg
from psycopg import pq

from . import internals

__all__ = ["PSYCOPG", "Chunks", "Each", "Groups", "Reading", "Waits", "chunks", "groups", "notified", "results"]

T = TypeVar("T")

#: A generator of waits that returns a *T* once it has read what it reads; what it is sent back is its runner's
#: (psycopg's ready values, or None from the event loop's task).
Reading = Generator[object, Any, T]

#: What makes a value of a batch's result as it comes, given the execution's index.
Each = Callable[[int, pq.abc.PGresult], Any]

_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
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


class Groups(NamedTuple):
    """What reading a batch gives: each execution's results (then the Sync's), what *each* made of them, and what
    *each* raised (kept until the pipeline has been read to its end)."""

    groups: list[list[pq.abc.PGresult]]
    made: list[Any]
    failed: BaseException | None


class Chunks(NamedTuple):
    """What reading a result in chunks gives: its last result (the empty end of the rows, or the error), and what
    the chunks' reader raised."""

    last: pq.abc.PGresult | None
    failed: BaseException | None


def _flushing(pgconn: pq.abc.PGconn, waits: Waits) -> Reading[None]:
    """The rest of a flush that did not send everything at once (parameters larger than the socket's buffer),
    reading what the server sends meanwhile."""
    while True:
        if (yield from waits.flushing()):
            pgconn.consume_input()
        if not pgconn.flush():
            return


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
            while pgconn.is_busy():
                if (yield from waits.reading()):
                    pgconn.consume_input()
        except psycopg.DatabaseError:
            if any(res.status == _FATAL_ERROR for res in out):
                break
            raise
        res = pgconn.get_result()
        if res is None:
            break
        out.append(res)
        if res.status in _LAST:
            break
    if n := pgconn.notifies():
        notified(pgconn, n)
    return out


def groups(
    pgconn: pq.abc.PGconn, count: int, each: Each | None, waits: Waits, *, lead: bool, begin: bool = False
) -> Reading[Groups]:
    """Flush a pipeline, then read its *count* groups of results (the last one the Sync's), handing each successful
    execution's result to *each* as soon as it is in, while the server works on the next ones. With *lead*, the
    pipeline begins with a Sync of its own, whose result is read first and dropped; with *begin*, then with a BEGIN,
    whose result is read and dropped too (kept as what failed, should it have)."""
    if pgconn.flush():
        yield from _flushing(pgconn, waits)
    if lead:
        while pgconn.is_busy():
            if (yield from waits.reading()):
                pgconn.consume_input()
        res = pgconn.get_result()
        if res is None or res.status != _PIPELINE_SYNC:
            raise psycopg.InterfaceError("unexpected result before a batch: not its leading Sync")
    read: list[list[pq.abc.PGresult]] = []
    group: list[pq.abc.PGresult] = []
    made: list[Any] = []
    failed: BaseException | None = None
    while begin:
        while pgconn.is_busy():
            if (yield from waits.reading()):
                pgconn.consume_input()
        res = pgconn.get_result()
        if res is None:
            begin = False
        elif res.status != _COMMAND_OK and failed is None:
            failed = psycopg.OperationalError(f"BEGIN failed: {res.error_message.decode(errors='replace').strip()}")
    while len(read) < count:
        while pgconn.is_busy():
            if (yield from waits.reading()):
                pgconn.consume_input()
        res = pgconn.get_result()
        if res is None:
            if each is not None and failed is None and group and group[0].status in _OK:
                try:
                    made.append(each(len(read), group[0]))
                except Exception as err:  # noqa: BLE001 - raised once the pipeline is read (see `Wire.execute_many`)
                    failed = err
            read.append(group)
            group = []
        elif res.status == _PIPELINE_SYNC:
            read.append([res])
        else:
            group.append(res)
    return Groups(read, made, failed)


def chunks(pgconn: pq.abc.PGconn, each: Callable[[pq.abc.PGresult], None], waits: Waits) -> Reading[Chunks]:
    """Flush a statement sent in chunked rows mode, then read its result, handing each chunk of rows to *each* as
    soon as it is in, while the server sends the next. What *each* raises is kept until the result has been read to
    its end.

    While chunks already received are made into values, the cyclic garbage collector is paused (as in
    `_outcome.collector_paused`, and for the same reason); it is resumed whenever the read waits for the server,
    so that a slow result never keeps it paused for others."""
    if pgconn.flush():
        yield from _flushing(pgconn, waits)
    last: pq.abc.PGresult | None = None
    failed: BaseException | None = None
    paused = False
    try:
        while True:
            while pgconn.is_busy():
                if paused:
                    paused = False
                    gc.enable()
                if (yield from waits.reading()):
                    pgconn.consume_input()
            res = pgconn.get_result()
            if res is None:
                if n := pgconn.notifies():
                    notified(pgconn, n)
                return Chunks(last, failed)
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


def notified(pgconn: pq.abc.PGconn, n: pq.PGnotify | None) -> None:
    """Hand *n*, a notification that came with a result, and those after it to the connection's handler, as
    psycopg's reads do (which drop them when there is none). Called when ``pgconn.notifies()`` gave one."""
    while n:
        if pgconn.notify_handler:
            pgconn.notify_handler(n)
        n = pgconn.notifies()


# Awaitable too (generator-based coroutines, changed in place): the async wire awaits them.
for _reading in (results, groups, chunks):
    types.coroutine(_reading)
