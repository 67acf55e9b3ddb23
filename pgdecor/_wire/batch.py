"""A batch (``.many()``) of a prepared statement through a wire, without I/O: every execution sent at once in
pipeline mode, then one Sync, its results read as they come (`generators.executions`) and checked here.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq

from . import internals
from .generators import BatchRead
from .guard import drifted
from .internals import Drift
from .wire_base import BaseWire, converted

__all__ = ["Send", "prepared", "results", "send"]

#: One execution to send: its prepared statement's name, its parameters dumped, and their formats.
Send = tuple[bytes, Sequence[psycopg.abc.Buffer | None], Sequence[pq.Format] | None]

_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_first = operator.itemgetter(0)


def prepared(wire: BaseWire, sql: str, paramsets: Sequence[Sequence[Any]]) -> list[Send] | None:
    """What sends a batch of *sql* through *wire*: every parameter set dumped and its prepared statement found
    first, so that nothing is sent unless all of them can be; None if psycopg should prepare one first, or if a
    private of psycopg answered otherwise (wires off then). Each statement is told to psycopg's prepare manager, so
    that its LRU order is what a cursor's executions would leave; *wire*'s `names` are the statements'."""
    tx, manager, pgq = wire._tx, wire.manager, wire._pgq
    try:
        try:
            if internals.prepare_threshold(manager) is None or internals.to_flush(manager):
                return None
        except Exception as err:
            raise Drift(internals.MANAGER, err) from err
        query, formats = converted(sql, tx.encoding)
        pgq.query = query
        names: dict[tuple[int, ...], bytes] = {}
        sends: list[Send] = []
        dump, named, add = tx.dump_sequence, names.get, sends.append
        for params in paramsets:
            dumped = dump(params, formats)
            types = tx.types or ()
            name = named(types)
            if name is None:
                pgq.types = types
                try:
                    prep, name = manager.get(pgq)
                    if prep is not internals.YES:
                        return None
                    if type(name) is not bytes:
                        raise TypeError(f"a name is {type(name).__name__}")  # noqa: TRY301
                    manager.maybe_add_to_cache(pgq, prep, name)  # the LRU order, as a cursor's execution keeps it
                except Exception as err:
                    raise Drift(internals.MANAGER, err) from err
                names[types] = name
            add((name, dumped, tx.formats))
    except Drift as err:
        drifted(err)
        return None
    wire.names = list(map(_first, sends))
    return sends


def send(pgconn: pq.abc.PGconn, sends: list[Send], binary: bool) -> None:
    """Send each execution of a batch, then its Sync (the connection in pipeline mode)."""
    fmt = pq.Format.BINARY if binary else pq.Format.TEXT
    send_one = pgconn.send_query_prepared
    for name, dumped, formats in sends:
        send_one(name, dumped, formats, fmt)
    pgconn.pipeline_sync()


def results(wire: BaseWire, sql: str, read: BatchRead) -> list[pq.abc.PGresult]:
    """A batch's results, read to its end, one per execution; psycopg's error for the first that failed."""
    *groups, sync = read.groups
    if len(sync) != 1 or sync[0].status != _PIPELINE_SYNC:
        raise psycopg.InterfaceError(f"unexpected results at the end of a batch of {sql!r}")
    if read.begun and read.begun[0].status == _FATAL_ERROR:  # the BEGIN sent with the batch failed: it was skipped
        wire._checked("BEGIN", read.begun[0])
    if not read.failed:  # each execution's result succeeded: its first
        return list(map(_first, groups))
    return [wire._checked(sql, group[0] if group else None) for group in groups]
