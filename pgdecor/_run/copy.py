# Generated from pgdecor/_run/copy_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._run.copy_async`, generated from it: see there."""

from __future__ import annotations

from itertools import islice
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer
from psycopg.rows import tuple_row

from pgdecor._errors import ArgumentError, NoSessionError, add_note
from pgdecor._plan.copy import COLUMNS_QUERY, CopyIn, CopyOut, CopyPlan, read_columns
from pgdecor._rows.copy_format import BINARY_HEADER, BINARY_TRAILER
from pgdecor._rows.copy_in import server_error_note
from pgdecor._rows.registry import registry_for
from pgdecor._rows.streams import BATCH_SIZE, StreamBase
from pgdecor._session.current import current, current_session
from pgdecor._session.lease import Lease
from pgdecor._session.scope import lease_for
from pgdecor._session.state import SyncState
from pgdecor._sources import probe
from pgdecor._wire.guard import copy_formats

from .copy_out import CopyReader, CopyStream, busy, check_free

__all__ = ["Copier"]


def _reads_in(given: object, sess: SyncState) -> bool:
    """Whether reading *given* needs the connection of *sess*: a stream of that session's."""
    return isinstance(given, StreamBase) and given._lock is sess.lock


class Copier:
    """Runs one COPY stub's calls (see the module docstring)."""

    __slots__ = ("plan",)

    def __init__(self, plan: CopyPlan) -> None:
        self.plan = plan

    # -- COPY in ------------------------------------------------------------------------------------------------

    def copy_in(self, args: tuple[Any, ...]) -> int:
        """Copy the rows of ``args[0]`` into the table; return how many the server stored."""
        plan = self.plan
        given = args[0]
        source = _iterate(plan, given)
        sess = current_session(plan.stub, "()", is_async=False)
        if _reads_in(given, sess):
            msg = (
                f"{plan.stub}(): its rows are a stream of the same session, whose connection the COPY needs for "
                f"itself; read them in another session, or into a list first"
            )
            raise ArgumentError(msg)
        with sess.lock:
            check_free(sess, plan)
            lease: Lease = sess.lease or lease_for(sess, readonly=False)
            prepared = self._prepared(lease)
            assert isinstance(prepared, CopyIn)
            busy[sess.lock] = (f"the COPY of {plan.stub}", 0)
            try:
                return self._send(lease, prepared, source)
            finally:
                del busy[sess.lock]

    def _send(self, lease: Lease, prepared: CopyIn, source: Any) -> int:
        plan, rows_in, conn = self.plan, prepared.rows, lease.conn
        formats = copy_formats()
        cur = conn.cursor()
        copying = cur.copy(prepared.statement)
        try:
            copy = copying.__enter__()
        except psycopg.Error as err:
            plan.forget(lease.key)
            add_note(err, f"{plan.stub}: COPY into {plan.name}")
            raise
        sent = 0
        try:
            tx = Transformer(cur)
            if rows_in.binary:
                if formats is None:
                    copy.set_types(rows_in.types)
                else:
                    tx.set_dumper_types(rows_in.types, pq.Format.BINARY)
            fmt = None if formats is None else formats.format_binary if rows_in.binary else formats.format_text
            while True:
                batch = _batch_of(plan, source)
                if not batch:
                    break
                data = bytearray(BINARY_HEADER if rows_in.binary and not sent else b"")
                try:
                    rows = rows_in.rows(batch)
                    if fmt is None:
                        for row in rows:
                            copy.write_row(row)
                    else:
                        for row in rows:
                            fmt(row, tx, data)
                except Exception as err:  # noqa: BLE001 - what a value makes psycopg raise: its row is found
                    # Unnamed: a local would tie the error to this frame in a cycle.
                    raise rows_in.refused(batch, sent, err, conn.adapters) or err  # noqa: B904 - its cause is set
                if fmt is not None:
                    copy.write(data)
                sent += len(batch)
            if fmt is not None and rows_in.binary and sent:
                copy.write(BINARY_TRAILER)
        except BaseException as err:
            # Shielded: the COPY is abandoned (the server is told so) whatever happens to the task meanwhile.
            copying.__exit__(type(err), err, err.__traceback__)
            if isinstance(err, psycopg.Error):
                plan.forget(lease.key)
                add_note(err, server_error_note(plan.stub, plan.param, plan.table, err))
            raise
        try:
            copying.__exit__(None, None, None)
        except psycopg.Error as err:
            plan.forget(lease.key)
            add_note(err, server_error_note(plan.stub, plan.param, plan.table, err))
            raise
        return cur.rowcount if cur.rowcount >= 0 else sent

    # -- COPY out -----------------------------------------------------------------------------------------------

    def copy_out(self, args: tuple[Any, ...]) -> CopyStream[Any]:  # noqa: ARG002 - the stub has none
        """The table's rows, as a stream of the row type."""
        plan = self.plan
        sess = current_session(plan.stub, "()", is_async=False)
        with sess.lock:
            check_free(sess, plan)
            lease: Lease = sess.lease or lease_for(sess, readonly=False)
            prepared = self._prepared(lease)
            assert isinstance(prepared, CopyOut)
            reader = CopyReader(lease.conn, prepared.rows)
            # Made first: should the task be cancelled once the COPY has begun, its session still ends the stream.
            stream: CopyStream[Any] = CopyStream(plan.stub, reader, prepared.rows.make, sess.lock, sess.open_streams)
            busy[sess.lock] = (f"the stream of {plan.stub}, still open", id(stream))
            try:
                reader.start(prepared.statement.as_bytes(lease.conn))
            except BaseException as err:
                if reader.ended:  # it never began: the connection is free
                    stream._drop(by_session=False)
                    stream._ended()
                if isinstance(err, psycopg.Error):
                    plan.forget(lease.key)
                    add_note(err, f"{plan.stub}: COPY out of {plan.name}")
                raise
        return stream

    # -- both ---------------------------------------------------------------------------------------------------

    def _prepared(self, lease: Lease) -> CopyIn | CopyOut:
        """What the COPY needs on the lease's server: read from the catalog at its first COPY there."""
        plan = self.plan
        found = plan.prepared(lease.key)
        if found is not None:
            return found
        conn = lease.conn
        try:
            cur = conn.cursor(row_factory=tuple_row)
            cur.execute(COLUMNS_QUERY, [plan.identifier.as_string(conn)])
            relation = read_columns(cur.fetchall())
            registry = registry_for(lease.key)
            if relation is not None:
                probe.describe(conn, registry, registry.missing([c.oid for c in relation[1]]))
        except psycopg.Error as err:
            add_note(err, f"{plan.stub}: while reading the columns of {plan.name} from the catalog")
            raise
        return plan.prepare(lease.key, relation, registry, conn)


def _iterate(plan: CopyPlan, rows: Any) -> Any:
    """The iterator (or async iterator) of a COPY's rows; `ArgumentError` if they are not iterable."""
    try:
        return iter(rows)
    except TypeError:
        msg = (
            f"{plan.stub}(): argument {plan.param!r} must be an iterable of {plan.row_type.__qualname__}, got "
            f"{type(rows).__qualname__}; nothing was sent to the server"
        )
        raise ArgumentError(msg) from None


def _batch_of(plan: CopyPlan, source: Any) -> list[Any]:
    """The next rows of *source*, up to a batch, read with no session current: a stub the iterable calls would
    need the connection the COPY holds."""
    token = current.set(None)
    try:
        return list(islice(source, BATCH_SIZE))
    except NoSessionError as err:
        add_note(
            err,
            f"{plan.stub}: its rows are read while the COPY holds the session's connection, so stubs called to make "
            f"them run in no session; call them before the COPY, or in a session of their own",
        )
        raise
    finally:
        current.reset(token)
