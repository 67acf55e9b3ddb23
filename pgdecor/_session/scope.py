# Generated from pgdecor/_session/scope_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `pgdecor._session.scope_async`, generated from it: see there."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

import psycopg
from psycopg import Connection, Transaction
from typing_extensions import Self

from pgdecor._errors import CommitUnknownError, RolledBackError, add_note
from pgdecor._sources.source import Source

from .current import current, current_session, is_sync_state, of_kind, owner, session_to_join
from .lease import Lease
from .replica import borrow_replica
from .state import AnyState, SyncState, outcome

__all__ = ["Savepoint", "Scope", "borrow", "lease_for", "reap"]

logger = logging.getLogger("pgdecor")

_GONE = "its thread ended, or it stayed idle in transaction past the leak timeout"


def reap(source: Source) -> int:
    """Roll back and give back the connections of this kind's orphaned sessions on *source* (see
    `_sources.guard`); return how many."""
    guard = source.guard
    orphans = guard.orphans(is_sync_state)
    for s in orphans:
        guard.warn(s, _GONE)
        for lease in s.reaped():
            with contextlib.suppress(psycopg.Error):  # a broken connection: the pool discards it
                lease.end(rollback=True)
            lease.give_back()
    return len(orphans)


def borrow(sess: SyncState, *, replica: bool, within: float | None = None, owing: bool = False) -> Lease:
    """*sess*'s lease on its source (or its replica), borrowed, and its transaction begun, at first use; a
    connection from the source's pool within *within* seconds, if given (a call's limit), and its own timeout;
    *owing*: by a call, which pays the connection's check (`AsyncLease.borrow`)."""
    sess = sess._joined or sess
    found = sess.replica_lease if replica else sess.lease
    if found is not None:
        return found
    sess._check_usable()
    source = sess._replica if replica else sess.source
    assert source is not None
    with sess._borrow_lock:
        found = sess.replica_lease if replica else sess.lease
        if found is None:  # not borrowed by another task (or thread) of the session meanwhile
            reap(source)
            found = Lease.borrow(source, sess.mode, within, owing=owing)
            sess._borrowed(found, replica=replica)
    return found


def lease_for(sess: SyncState, *, readonly: bool, within: float | None = None, owing: bool = False) -> Lease:
    """The lease a call uses: a readonly call's goes to the replica, if the session has one and has not used the
    primary (whose writes it must see), and the replica has replayed the writes of the session whose token it was
    given; not at SERIALIZABLE, which a standby refuses. *owing*: see `borrow`."""
    if readonly and sess._replica is not None and sess.lease is None and not sess.mode.on_primary_only:
        replica = _areplica_for(sess)
        if replica is not None:
            return replica
    return borrow(sess, replica=False, within=within, owing=owing)


def lease_in_use(sess: SyncState, *, readonly: bool) -> Lease | None:
    """The lease a call of *sess* uses (see `lease_for`), if it is borrowed already; None where the call would
    borrow one first, or learn whether the replica can serve it."""
    if sess.lease is not None:
        return sess.lease
    owner = sess._joined or sess
    if readonly and sess._replica is not None and not sess.mode.on_primary_only:
        return owner.replica_lease
    return owner.lease


def _areplica_for(sess: SyncState) -> Lease | None:
    """*sess*'s replica lease, borrowed at its first readonly call; None where the session reads from the primary
    instead: the replica had not replayed past the session's token in time, or cannot be reached (counted; the
    replica is then left alone for a while: see `_sources.replicas.Health`)."""
    sess = sess._joined or sess
    found = sess.replica_lease
    if found is not None or sess._replica_behind:
        return found
    sess._check_usable()
    replica = sess._replica
    assert replica is not None
    counters, health = sess.source.counters, replica.health
    with sess._borrow_lock:
        if sess._replica_decided():  # borrowed, or given up, by another task of the session meanwhile
            return sess.replica_lease
        if health.skip():
            sess._replica_behind = True
            counters.add("replica_unreachable")
            return None
        bound = 0.0  # a sync session looks once: waiting would hold its thread, a worker of the service
        try:
            reap(replica)
            got = borrow_replica(replica, sess.mode, sess.after, bound, sess.source)
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


def _entered(sess: SyncState, entered: FrameType) -> None:
    """*sess* was entered by the frame *entered*: it joins the session whose block runs around it, if one on its
    source does, else it is its own, and the current one."""
    outer = session_to_join(sess.source, entered, is_async=False)
    if outer is not None:
        sess._join(outer)
        return
    task = owner(is_async=False)
    lock, borrowing = threading.RLock(), threading.RLock()
    sess._own(entered, lock, borrowing, task)
    sess._token = current.set(sess)


def _finish(
    sess: SyncState, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
) -> None:
    """End the transactions and give the connections back (once: the block's exit after `end` does nothing
    more); `_leave` then resets the context."""
    if not sess._finishing():
        return
    committed = unknown = False
    try:
        for stream in sess._close_streams():
            stream._end()
        rollback, problem = outcome(sess, exc)
        for lease in (sess.replica_lease, sess.lease):
            if lease is not None:
                try:
                    lease.end(rollback, exc_type, exc, tb)
                except CommitUnknownError as err:
                    unknown = True
                    add_note(err, f"pgdecor: {sess!r} may have committed, or not: check before doing it again")
                    raise
        if not rollback and sess.lease is not None and sess._replica is not None:
            sess.commit_token = sess.lease.commit_token()
        if problem is not None:
            raise RolledBackError(problem)  # unnamed: a local would tie it to this frame in a cycle
        committed = not rollback
    finally:
        try:
            for lease in sess._detach():
                lease.give_back()
        finally:
            sess._released(committed=committed, unknown=unknown)


class Scope:
    """What `Session` does in this kind of session: entering, ending, its connections."""

    __slots__ = ()
    _state: AnyState  # Session's slot, shared by both kinds

    def __enter__(self) -> Self:
        state = self._state
        state._begin(is_async=False)
        _entered(of_kind(state, is_async=False), sys._getframe(1))  # the frame running the `with`
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        state = of_kind(self._state, is_async=False)
        if state._joined is not None:
            state._left_outer()
            return
        try:
            # Shielded: a transaction ended half-way (the task cancelled again while it rolls back, as anyio's
            # cancel scopes do) would leave a connection the pool can only throw away.
            _finish(state, exc_type, exc, tb)
        finally:
            token = state._leave()
            if token is not None:
                try:
                    current.reset(token)
                except ValueError:
                    # A generator dropped inside its block is closed where it is finalized: an async one always in
                    # a task of its own (its event loop's), so never in the context it entered the session in.
                    # Ended, the session is never joined there; and nobody could catch this error: it would only
                    # be logged.
                    if exc_type is not GeneratorExit:
                        raise

    def end(self) -> None:
        """End the session now, as its block ending without an error would: commit (unless it was doomed, or its
        transaction is not sound) and give the connections back. The block's exit then only leaves the context."""
        _finish(of_kind(self._state, is_async=False), None, None, None)

    def connection(self) -> Connection[Any]:
        """The session's connection, borrowed (and a transaction begun) on first use."""
        return (borrow(of_kind(self._state, is_async=False), replica=False)).begun(lent=True)

    def replica_connection(self) -> Connection[Any]:
        """The connection to the replica, borrowed (and a transaction begun) on first use."""
        return (borrow(of_kind(self._state, is_async=False), replica=True)).begun(lent=True)


class Savepoint:
    """What `TransactionScope` does in this kind of session: a savepoint."""

    __slots__ = ()
    _tx: Any  # TransactionScope's slots, shared by both kinds
    _lease: Any

    def __enter__(self) -> Self:
        lease = borrow(current_session("transaction()", is_async=False), replica=False)
        tx = Transaction(lease.begun())
        tx.__enter__()
        self._tx, self._lease = tx, lease
        lease.savepoints += 1
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        try:
            suppressed: bool = self._tx.__exit__(exc_type, exc, tb)
        finally:
            self._lease.savepoints -= 1
        return suppressed
