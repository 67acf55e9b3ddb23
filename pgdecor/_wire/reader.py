"""A statement's result as a wire reads it (`Reader`): taken once psycopg's prepare manager has seen its execution as
a cursor's would have, checked, and its rows loaded with the connection's adapters, as a cursor's ``fetchone`` and
``fetchmany`` load them.

A wire (`_wire.wire_base.BaseWire`) is the reader of the results of its own calls; a call whose statement went
after another's in the same pipeline (`_wire.flight`) has a reader of its own, so that the two never share what
they are reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.abc import Transformer
from psycopg.adapt import AdaptersMap
from psycopg.errors import error_from_result

from . import internals
from .guard import drifted
from .internals import Drift

__all__ = ["Query", "Reader"]

_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR


class Query:
    """What psycopg's prepare manager keys a statement by (`internals.Keyed`): one per wire, refilled by each
    call."""

    __slots__ = ("query", "types")

    def __init__(self) -> None:
        self.query = b""
        self.types: tuple[int, ...] = ()


class Reader:
    """What reads a statement's results: they are taken (`_made`), then the rows read (`fetchone`, `fetchmany`). It
    quacks enough like a cursor (``pgresult``, ``adapters``, ``fetchone``, ``fetchmany``) for the leak guard, for
    building a result layout and for reading the rows."""

    __slots__ = (
        "_count",
        "_key",
        "_loaded",
        "_loaded_binary",
        "_pgq",
        "_pos",
        "_prep",
        "_tx",
        "adapters",
        "manager",
        "name",
        "pgresult",
    )

    def __init__(self, tx: Transformer, adapters: AdaptersMap, manager: internals.Manager, pgq: Query) -> None:
        self.adapters = adapters
        #: psycopg's prepare manager of the connection, and the name of the prepared statement that made the last
        #: result (None: sent unnamed). A name is never given to another statement on the same connection.
        self.manager = manager
        self.name: bytes | None = None
        #: The last result, as a cursor's ``pgresult``.
        self.pgresult: pq.abc.PGresult | None = None
        #: Rows in the last result, and the next one to read.
        self._count = self._pos = 0
        self._tx = tx
        #: The statement of the call being made, as psycopg's prepare manager keys it, and what the manager said
        #: of it.
        self._pgq = pgq
        self._key: internals.Key = (b"", ())
        self._prep: internals.Prepare = internals.NO
        #: The prepared statement, and the format, of the result whose loaders the transformer holds (see `_made`).
        self._loaded: bytes | None = None
        self._loaded_binary = False

    def _made(self, sql: str, results: Sequence[pq.abc.PGresult], binary: bool) -> None:
        """Take the statement's *results*, once psycopg's prepare manager has seen it as after a cursor's execution
        (its LRU order, and whether the command invalidates its statements); or raise psycopg's error for it. The
        result (`pgresult`) is read next (`fetchone`, `fetchmany`), by the loaders of the result read before if
        both came from the same prepared statement in the same format: the server refuses to change a prepared
        statement's columns."""
        name, manager = self.name, self.manager
        try:
            if name is not None and internals.LRU_IS_A_MOVE:
                try:  # what psycopg's manager does for it (see `lru_is_a_move`)
                    internals.prepared_names(manager).move_to_end(self._key)
                except KeyError:  # evicted meanwhile (by another thread's statement on the connection): ask psycopg
                    self._seen(results)
            elif name is None or next(reversed(internals.prepared_names(manager)), None) != self._key:
                self._seen(results)  # else the most recent already
        except Exception as err:  # noqa: BLE001 - the statement ran: its result stands, psycopg keeps its manager
            drifted(Drift(internals.MANAGER, err))
        res = results[0] if results else None
        if res is None or res.status not in _OK:
            res = self._checked(sql, res)  # raises
        self.pgresult = res
        self._count, self._pos = res.ntuples, 0
        if name is not None and name is self._loaded and binary is self._loaded_binary:
            self._tx.set_pgresult(res, set_loaders=False)
        else:
            self._tx.set_pgresult(res)
            self._loaded, self._loaded_binary = name, binary

    def _seen(self, results: Sequence[pq.abc.PGresult]) -> None:
        """Tell psycopg's prepare manager of an execution of the statement, as a cursor's execution does."""
        pgq, manager = self._pgq, self.manager
        pgq.query, pgq.types = self._key
        key = manager.maybe_add_to_cache(pgq, self._prep, self.name or b"")
        if key is not None:
            manager.validate(key, self._prep, self.name or b"", results)

    def _checked(self, sql: str, res: pq.abc.PGresult | None) -> pq.abc.PGresult:
        """*res*, a statement's result; psycopg's error for it if it failed (or for none at all)."""
        if res is None:
            raise psycopg.InternalError("got no result from the query")
        status = res.status
        if status == _FATAL_ERROR:
            raise error_from_result(res, encoding=self._tx.encoding)
        if status not in _OK:
            raise psycopg.InterfaceError(f"unexpected result status from {sql!r}: {pq.ExecStatus(status).name}")
        return res

    def fetchone(self) -> tuple[Any, ...] | None:
        """The last result's next row, as a cursor's ``fetchone``."""
        pos = self._pos
        if pos >= self._count:
            return None
        self._pos = pos + 1
        return self._tx.load_row(pos, tuple)

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        """The last result's next *size* rows at most, as a cursor's ``fetchmany``."""
        pos = self._pos
        self._pos = stop = min(pos + size, self._count)
        return self._tx.load_rows(pos, stop, tuple)
