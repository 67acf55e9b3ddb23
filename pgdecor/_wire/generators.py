"""The wire's protocol, written once and without I/O: generators that flush what was sent through libpq and read
what the server gives back, as psycopg's own (``psycopg.generators``).

Each yields what it waits for (`internals.WAIT_R`, `WAIT_RW`: psycopg's values) and is sent what became ready:
`internals.READY_R` or `READY_W` (anything but 0: it reads the socket then, so that no value psycopg's wait may
send is misread), or 0: nothing new, look again (the async wire's reader has read what came already). The sync
wire runs them on the connection's wait (psycopg's C poll loop), the async one on the event loop (`_wire.watch`),
and the sync one, should psycopg's wait have changed, on the standard library's selectors (`_wire.fallback`). A
connection that breaks while one waits on the event loop is an error thrown into it, where it waits.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Generator
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg import pq

from . import internals

__all__ = ["Chunks", "Each", "Groups", "Reading", "chunks", "groups", "notified", "results"]

T = TypeVar("T")

#: A generator of waits that returns a *T* once it has read what it reads.
Reading = Generator[int, int, T]

#: What makes a value of a batch's result as it comes, given the execution's index.
Each = Callable[[int, pq.abc.PGresult], Any]

_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
_TUPLES_CHUNK = getattr(pq.ExecStatus, "TUPLES_CHUNK", -1)
#: The results after which libpq gives no None to end a statement's: a COPY's (it gives the same one again and
#: again), and a pipeline's Sync (alone in its group).
_LAST = (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH, _PIPELINE_SYNC)


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


def _flushing(pgconn: pq.abc.PGconn) -> Reading[None]:
    """The rest of a flush that did not send everything at once (parameters larger than the socket's buffer),
    reading what the server sends meanwhile."""
    while True:
        if (yield internals.WAIT_RW):
            pgconn.consume_input()
        if not pgconn.flush():
            return


def results(pgconn: pq.abc.PGconn) -> Reading[list[pq.abc.PGresult]]:
    """Flush a statement sent, and read every result it gives, by psycopg's rules (``generators.execute``): up to the
    statement's end, a COPY or a pipeline's Sync; a connection that breaks once the server has sent an error ends
    the read, so that the server's error is what the call raises. Notifications that came with them go to the
    connection's handler."""
    if pgconn.flush():
        yield from _flushing(pgconn)
    out: list[pq.abc.PGresult] = []
    while True:
        try:
            while pgconn.is_busy():
                if (yield internals.WAIT_R):
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


def groups(pgconn: pq.abc.PGconn, count: int, each: Each | None) -> Reading[Groups]:
    """Flush a pipeline, then read its *count* groups of results (the last one the Sync's), handing each successful
    execution's result to *each* as soon as it is in, while the server works on the next ones."""
    if pgconn.flush():
        yield from _flushing(pgconn)
    read: list[list[pq.abc.PGresult]] = []
    group: list[pq.abc.PGresult] = []
    made: list[Any] = []
    failed: BaseException | None = None
    while len(read) < count:
        while pgconn.is_busy():
            if (yield internals.WAIT_R):
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


def chunks(pgconn: pq.abc.PGconn, each: Callable[[pq.abc.PGresult], None]) -> Reading[Chunks]:
    """Flush a statement sent in chunked rows mode, then read its result, handing each chunk of rows to *each* as
    soon as it is in, while the server sends the next. What *each* raises is kept until the result has been read to
    its end.

    While chunks already received are made into values, the cyclic garbage collector is paused (as in
    `_outcome.collector_paused`, and for the same reason); it is resumed whenever the read waits for the server,
    so that a slow result never keeps it paused for others."""
    if pgconn.flush():
        yield from _flushing(pgconn)
    last: pq.abc.PGresult | None = None
    failed: BaseException | None = None
    paused = False
    try:
        while True:
            while pgconn.is_busy():
                if paused:
                    paused = False
                    gc.enable()
                if (yield internals.WAIT_R):
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
