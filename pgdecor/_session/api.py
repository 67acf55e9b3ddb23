"""Sessions: the one place that commits, rolls back and gives back connections.

A session is a context manager that sets a `contextvars.ContextVar`; decorated calls made inside it (in the same
thread or asyncio task, and tasks it starts) find their connection there. The connection is borrowed at the first
call (a lease: `_session.lease_async`) and, at scope exit, the transaction is committed (or rolled back on an exception,
or when it is not sound) and the connection is returned to its pool or closed. That happens in
``__exit__``/``__aexit__`` and nowhere else: nothing waits for the garbage collector.

What a session is and decides is `_session.state`; the I/O of each kind is `_session.scope_async` and its generated
twin `_session.scope`. This module puts them together behind `session` and `transaction`.
"""

from __future__ import annotations

import sys

from psycopg import IsolationLevel

from pgdecor._errors import ArgumentError
from pgdecor._limits.deadlines import seconds_given
from pgdecor._sources.kinds import Given, source_for
from pgdecor._sources.replicas import replay_token
from pgdecor._sources.source import Source

from .modes import DEFAULT_MODE, Isolation, Mode, mode
from .scope import Savepoint, Scope
from .scope_async import AsyncSavepoint, AsyncScope
from .state import AnyState, SessionState

__all__ = ["Given", "Session", "TransactionScope", "open_session", "session", "transaction"]


class Session(Scope, AsyncScope):
    """The scope that owns one borrowed connection (and one of a replica); see `session`.

    Once a session with a replica has used its primary and committed, ``commit_token`` is the token later
    sessions pass as ``after=`` to read its writes from the replica::

        with db.session() as s:
            rename_user(1, "ann")
        response.set_cookie("pgdecor-lsn", s.commit_token or "")
    """

    __slots__ = ("_state",)

    def __init__(
        self,
        source: Source,
        replica: Source | None = None,
        opened_at: str = "?",
        mode: Mode = DEFAULT_MODE,
        after: str | None = None,
        *,
        deadline: float | None = None,
    ) -> None:
        #: Everything the session is and decides (see `_session.state`): its sources, once chosen, and its life.
        self._state: AnyState = SessionState(source, replica, opened_at, mode, after, deadline=deadline)

    def __repr__(self) -> str:
        return repr(self._state)

    @property
    def commit_token(self) -> str | None:
        """Once the session has used its primary and committed, on a source with a replica: the token a later
        session passes as ``after=`` to read its writes from the replica; None otherwise."""
        return self._state.commit_token

    @property
    def borrowed(self) -> bool:
        """Whether the session holds a borrowed connection now: it then has a transaction to end."""
        return self._state.borrowed

    def doom(self) -> None:
        """Make the session roll back when it ends, though its block does not raise (a middleware whose response
        says the request failed, a test whose writes must not stay). Counted as rolled back; no error is raised
        for it."""
        self._state.doom()


def session(
    source: Given,
    /,
    *,
    replica: Given | None = None,
    isolation: Isolation | IsolationLevel | None = None,
    readonly: bool = False,
    autocommit: bool = False,
    after: str | None = None,
    deadline: float | None = None,
) -> Session:
    """Open a session on *source* for the duration of a ``with`` (or ``async with``) block.

    *source* is a `Database`, a psycopg_pool pool (a connection is borrowed at the first call and given back at
    exit), a conninfo string (a connection is opened at the first call and closed at exit), or a psycopg
    ``Connection`` (used as it is, inside a transaction or savepoint of its own). Async sources need
    ``async with``.

    Stubs declared ``readonly=True`` run on *replica* (a source of the same kind; a `Database` brings its own)
    as long as the session has not used *source*: once it has, they run there too, and see its writes.

    *isolation* (``"read committed"``, ``"repeatable read"``, ``"serializable"``) and *readonly* are sent in
    the session's BEGIN. With *autocommit*, the session begins no transaction: each call is one implicit
    transaction of its own, committed when it succeeds (a distributed database can then delegate it to a worker);
    its errors raise as in any session, and `transaction` still opens a transaction.

    *after* is the `Session.commit_token` of an earlier session (another request's, carried in a cookie or a
    header): readonly stubs then run on the replica only once it has replayed that session's writes, waiting for
    it up to the database's ``replica_wait`` (1 s for other sources), and on the primary after that.

    *deadline*: seconds the session's calls have in all, counted from its entry: each call is given what is left
    (or its stub's ``timeout=``, if sooner), and one begun once none is left raises `DeadlineError` without
    sending anything. A session joining another keeps the sooner of both deadlines while its block runs.

    A session opened inside another session on the same source joins it: both share one connection and one
    transaction, which ends with the outer session. Inside means inside its block while it runs (in code it
    calls, tasks it starts, the ``with`` of a context manager that opened it); a session that has ended, or that
    the context holds while its block does not run around the new one (a generator suspended in it, iterated by
    the code opening the new one; the previous task of a thread pool's thread), is never joined. Use
    `transaction` for a nested unit that can fail alone::

        with session("postgresql:///app"):
            user = get_user(1)
    """
    caller = sys._getframe(1)
    where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
    chosen = mode("session()", isolation, readonly, autocommit)
    return open_session("session()", source, replica, where, chosen, after=after, deadline=deadline)


def open_session(
    what: str,
    source: Given,
    replica: Given | None,
    opened_at: str,
    mode: Mode,
    *,
    after: object = None,
    deadline: object = None,
) -> Session:
    """A session on *source* (and *replica*), each made the `Source` of its kind here, once (*what* names the
    caller in the error for a kind no session takes); *opened_at* says where."""
    chosen = source_for(what, source)
    chosen_replica = None if replica is None else source_for(what, replica)
    seconds = seconds_given(f"{what}: deadline=", deadline, ArgumentError)
    return Session(chosen, chosen_replica, opened_at, mode, replay_token(what, after), deadline=seconds)


def transaction() -> TransactionScope:
    """A savepoint inside the current session: rolled back alone if its block raises.

    ::

        with session(pool):
            create_order(...)
            try:
                with transaction():
                    charge_card(...)      # fails: only this part is rolled back
            except CardDeclined:
                mark_unpaid(...)
    """
    return TransactionScope()


class TransactionScope(Savepoint, AsyncSavepoint):
    """A nested transaction (savepoint) in the current session; see `transaction`."""

    __slots__ = ("_lease", "_tx")

    def __init__(self) -> None:
        self._tx = self._lease = None
