# Generated from pgdecor/_session/scope_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._session.scope_async`, generated from it: see there."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, cast

import psycopg
from psycopg import Connection, Transaction
from typing_extensions import Self

from pgdecor._errors import CommitUnknownError, RolledBackError, add_note
from pgdecor._sources.config import counters_for, health_for

from .lease import Lease
from .state import SessionState, current_session

__all__ = ["Savepoint", "Scope", "borrow", "lease_for"]

logger = logging.getLogger("pgdecor")


def borrow(sess: SessionState, *, replica: bool, within: float | None = None) -> Lease:
    """*sess*'s lease on its source (or its replica), borrowed, and its transaction begun, at first use; a
    connection from the source's pool within *within* seconds, if given (a call's limit), and its own timeout."""
    sess = sess._joined or sess
    found: Lease | None = sess.replica_lease if replica else sess.lease
    if found is not None:
        return found
    sess._check_usable()
    source = sess._replica if replica else sess.source
    assert source is not None
    with sess._borrow_lock:
        found = sess.replica_lease if replica else sess.lease
        if found is None:  # not borrowed by another task (or thread) of the session meanwhile
            found = Lease.borrow(source, sess.mode, within)
            sess._borrowed(found, replica=replica)
    return found


def lease_for(sess: SessionState, *, readonly: bool, within: float | None = None) -> Lease:
    """The lease a call uses: a readonly call's goes to the replica, if the session has one and has not used the
    primary (whose writes it must see), and the replica has replayed the writes of the session whose token it was
    given; not at SERIALIZABLE, which a standby refuses."""
    if readonly and sess._replica is not None and sess.lease is None and not sess.mode.on_primary_only:
        replica = _areplica_for(sess)
        if replica is not None:
            return replica
    return borrow(sess, replica=False, within=within)


def _areplica_for(sess: SessionState) -> Lease | None:
    """*sess*'s replica lease, borrowed at its first readonly call; None where the session reads from the primary
    instead: the replica had not replayed past the session's token in time, or cannot be reached (counted; the
    replica is then left alone for a while: see `_sources.replicas.Health`)."""
    sess = sess._joined or sess
    found: Lease | None = sess.replica_lease
    if found is not None or sess._replica_behind:
        return found
    sess._check_usable()
    replica = sess._replica
    assert replica is not None
    counters, health = counters_for(sess.source), health_for(replica)
    with sess._borrow_lock:
        if sess._replica_decided():  # borrowed, or given up, by another task of the session meanwhile
            return cast(Lease | None, sess.replica_lease)  # noqa: TC006 - renamed in the sync twin
        if health.skip():
            sess._replica_behind = True
            counters.add("replica_unreachable")
            return None
        bound = 0.0  # a sync session looks once: waiting would hold its thread, a worker of the service
        try:
            got = Lease.borrow_replica(replica, sess.mode, sess.after, bound, sess.source)
        except psycopg.OperationalError as err:  # no connection in time, or lost: the primary serves
            health.failed(err)
            sess._replica_behind = True
            counters.add("replica_unreachable")
            return None
        health.reached()
        if got.waited:
            counters.add("replica_waits")
        if got.rejected:
            counters.add("tokens_rejected")
            logger.info("pgdecor: %r was given a commit token not sealed with its key; it is ignored", sess)
        if got.lease is None:
            sess._replica_behind = True
            counters.add("replica_fallbacks")
        else:
            sess._borrowed(got.lease, replica=True)
    return got.lease


class Scope(SessionState):
    """`Session`'s scope, for this kind of session: entering, borrowing, ending."""

    __slots__ = ()

    def __enter__(self) -> Self:
        self._enter(is_async=False)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._joined is not None:
            self._left_outer()
            return
        try:
            # Shielded: a transaction ended half-way (the task cancelled again while it rolls back, as anyio's
            # cancel scopes do) would leave a connection the pool can only throw away.
            self._finish(exc_type, exc, tb)
        finally:
            self._leave()

    def end(self) -> None:
        """End the session now, as its block ending without an error would: commit (unless it was doomed, or its
        transaction is not sound) and give the connections back. The block's exit then only leaves the context."""
        self._finish(None, None, None)

    def _finish(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """End the transactions and give the connections back (once); `_leave` then resets the context."""
        if self._finished:
            return
        self._finished = self._ended = True
        committed = unknown = False
        try:
            for stream in self._close_streams():
                stream._end()
            rollback, problem = self._outcome(exc)
            for lease in (self.replica_lease, self.lease):
                if lease is not None:
                    try:
                        lease.end(rollback, exc_type, exc, tb)
                    except CommitUnknownError as err:
                        unknown = True
                        add_note(err, f"pgdecor: {self!r} may have committed, or not: check before doing it again")
                        raise
            if not rollback and self.lease is not None and self._replica is not None:
                self.commit_token = self.lease.commit_token()
            if problem is not None:
                raise RolledBackError(problem)  # unnamed: a local would tie it to this frame in a cycle
            committed = not rollback
        finally:
            try:
                for lease in self._detach():
                    lease.give_back()
            finally:
                self._released(committed=committed, unknown=unknown)

    def connection(self) -> Connection[Any]:
        """The session's connection, borrowed (and a transaction begun) on first use."""
        return (borrow(self, replica=False)).conn

    def replica_connection(self) -> Connection[Any]:
        """The connection to the replica, borrowed (and a transaction begun) on first use."""
        return (borrow(self, replica=True)).conn


class Savepoint:
    """`TransactionScope`'s savepoint, for this kind of session."""

    __slots__ = ()
    _tx: Any  # TransactionScope's slot, shared by both kinds

    def __enter__(self) -> Self:
        lease = borrow(current_session("transaction()", is_async=False), replica=False)
        tx = Transaction(lease.conn)
        tx.__enter__()
        self._tx = tx
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        suppressed: bool = self._tx.__exit__(exc_type, exc, tb)
        return suppressed
