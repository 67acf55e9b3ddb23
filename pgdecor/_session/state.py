"""What a session is, for both kinds: its state, entering it, and the decisions at its end. No I/O: borrowing
and ending are `scope_async` and its generated `scope`; which session is current is `_session.current`.

A session's state is generic in what differs by kind (its leases, its lock, its streams): `AsyncState` for a
session entered with ``async with``, `SyncState` for one entered with ``with``. Its life is a `Life`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextvars import Token
from time import monotonic
from types import FrameType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeAlias, TypeVar

from psycopg import BaseConnection, pq

from pgdecor._errors import ArgumentError
from pgdecor._sources import fork as forked
from pgdecor._sources.source import Source

from .blocks import Site, site
from .life import Life, moved, unusable
from .modes import DEFAULT_MODE, Mode

if TYPE_CHECKING:
    from .lease import Lease
    from .lease_async import AsyncLease
    from .turns import Turns

__all__ = [
    "AnyState",
    "AsyncOpenStream",
    "AsyncState",
    "OpenStream",
    "Owner",
    "SessionState",
    "SyncState",
    "outcome",
]

logger = logging.getLogger("pgdecor")

_INTRANS = pq.TransactionStatus.INTRANS
_INERROR = pq.TransactionStatus.INERROR


class Leased(Protocol):
    """What a session's state uses of its leases, of either kind (`_session.lease_async.AsyncLease`)."""

    @property
    def conn(self) -> BaseConnection[Any]: ...

    @property
    def tx(self) -> object:
        """The session's transaction on the connection; None in autocommit."""
        ...

    @property
    def pending(self) -> bool:
        """Whether the transaction is yet to begin with the first statement."""
        ...

    def results(self) -> tuple[object, ...]: ...


class Streamed(Protocol):
    """What a session's state uses of its open streams (`pgdecor.Stream`, `pgdecor.CopyStream`, ...)."""

    def _last_result(self) -> object:
        """The result the stream read last: the leak guard sees the stream in use by its changing."""
        ...


class AsyncOpenStream(Streamed, Protocol):
    """An open stream of an async session, which the session ends at its exit."""

    async def _aend(self) -> None: ...


class OpenStream(Streamed, Protocol):
    """An open stream of a sync session, which the session ends at its exit."""

    def _end(self) -> None: ...


L = TypeVar("L", bound=Leased)
K = TypeVar("K")
S = TypeVar("S", bound=Streamed)

#: The state of a session entered with ``async with``, and of one entered with ``with``.
AsyncState: TypeAlias = "SessionState[AsyncLease, Turns, AsyncOpenStream]"
SyncState: TypeAlias = "SessionState[Lease, threading.RLock, OpenStream]"
AnyState: TypeAlias = "AsyncState | SyncState"

Owner: TypeAlias = "threading.Thread | asyncio.Task[Any] | None"


class SessionState(Generic[L, K, S]):
    """The state of a session (see `pgdecor.session`) and the decisions both kinds share. It is `Guarded` by its
    source's leak guard while it holds a connection."""

    __slots__ = (
        "_borrow_lock",
        "_deadline_given",
        "_doomed",
        "_frame",
        "_joined",
        "_life",
        "_outer_deadline",
        "_owner",
        "_replica",
        "_replica_behind",
        "_site",
        "_token",
        "_tracked",
        "after",
        "commit_token",
        "deadline",
        "is_async",
        "lease",
        "lock",
        "mode",
        "open_streams",
        "opened_at",
        "replica_lease",
        "source",
    )

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
        self.source = source
        #: Seconds the session is given from its entry (see `_limits.deadlines`), and once entered, when it ends
        #: (`time.monotonic`) with those seconds, for the calls it runs; None: no deadline.
        self._deadline_given = deadline
        self.deadline: tuple[float, float] | None = None
        #: A joined session's deadline holds for its outer's calls while its block runs: the outer's, to put back.
        self._outer_deadline: tuple[float, float] | None = None
        #: How its transactions begin (isolation, read-only), or that it begins none (autocommit).
        self.mode = mode
        #: The token of an earlier session whose writes this one must see (see `replicas`): its readonly calls run on
        #: the replica only once it has replayed that far.
        self.after = after
        #: Once a session with a replica has used its primary and committed: the token that lets later sessions
        #: read its writes from the replica (see `_sources.replicas`); None otherwise.
        self.commit_token: str | None = None
        #: Set when the replica had not replayed past `after` in time: the session reads from the primary.
        self._replica_behind = False
        self._replica = source.replica if replica is None else replica
        #: Where the session was opened (file:line), for messages and the leak guard's warnings.
        self.opened_at = opened_at
        #: The connections borrowed from the source and from the replica, each at its first use; None until then,
        #: and again once given back.
        self.lease: L | None = None
        self.replica_lease: L | None = None
        #: What a call holds while it uses the session's connections (tasks, or threads, sharing the session take
        #: turns), and what is held while borrowing (so that they borrow one connection between them): made when
        #: the session is entered. A joined session has its outer's.
        self.lock: K
        self._borrow_lock: K
        #: The session's streams not closed yet: it ends them at exit.
        self.open_streams: list[S] = []
        self._token: Token[AnyState | None] | None = None
        #: The outer session this one joined (same source): it does nothing of its own.
        self._joined: SessionState[L, K, S] | None = None
        #: Whether it was entered with ``async with`` (its kind from then on).
        self.is_async = False
        self._life = Life.UNOPENED
        #: The thread or asyncio task that entered the session: what the leak guard checks. Tasks the owner starts
        #: inside the block share the session (and join it); the owner outlives them.
        self._owner: Owner = None
        #: While it is open, the frame that entered the session (the one running its `with`), and for a
        #: generator's frame, where the generator was run from: whether a session opened later in the same thread
        #: or task is inside its block, and joins it (see `_session.blocks`).
        self._frame: FrameType | None = None
        self._site: Site | None = None
        self._tracked = False
        #: Set by `doom`: the session rolls back at exit although its block did not raise.
        self._doomed = False

    def __repr__(self) -> str:
        kind = "async " if self.is_async else ""
        return f"<pgdecor {kind}session on {self.source.describe()} opened at {self.opened_at} ({self._life.shown})>"

    @property
    def borrowed(self) -> bool:
        """Whether the session holds a borrowed connection now: then it has a transaction to end."""
        return self.lease is not None or self.replica_lease is not None

    def doom(self) -> None:
        """Make the session roll back when it ends, though its block does not raise."""
        (self._joined or self)._doomed = True

    # -- what the leak guard sees (`Guarded`) -------------------------------------------------------------------

    def owner_gone(self) -> bool:
        """Whether the thread or task that entered the session has ended (so that nobody can end the session)."""
        owner = self._owner
        return not owner.is_alive() if isinstance(owner, threading.Thread) else owner is not None and owner.done()

    def activity(self) -> tuple[object, ...] | None:
        lease = self.lease
        if lease is None or (lease.conn.info.transaction_status != _INTRANS and not lease.pending):
            return None
        return (*lease.results(), *(stream._last_result() for stream in self.open_streams))

    def reaped(self) -> list[L]:
        """The leak guard ends the session: its leases, taken from it, to roll back and give back."""
        self._move(Life.REAPED)
        self.open_streams.clear()  # each of its streams holds the list: left in it, they would be a cycle
        self._frame = self._site = None
        if self.owner_gone():
            # The context its owner left behind still holds it, and it held that context (its token) and, in async,
            # the task whose context it is: a cycle once nothing else holds them. An owner still there (idle past
            # the leak timeout) resets its context with the token when it leaves the block.
            self._token = self._owner = None
        counters = self.source.counters
        counters.add("released")
        counters.add("rolled_back")
        return self._detach()

    def forget_forked(self) -> None:
        """In a forked child: the session is the parent's. Its connections are made unreachable (see
        `_sources.fork`) and it is ended here without a word to the server; using it raises `NoSessionError`. One a
        thread of the parent was ending as it forked has its connections made unreachable too."""
        if self._life is Life.OPEN:
            self._move(Life.FORKED)
        self._frame = self._site = None
        leases = self._detach()
        for lease in leases:
            forked.blind(lease.conn)
        # Kept, never finalized or given back; not even the wires are closed (their event loop's selector is
        # shared with the parent).
        forked.keep(leases)

    # -- for the scopes of both kinds ---------------------------------------------------------------------------

    def _move(self, to: Life) -> None:
        """The one place a session's life changes (see `_session.life`)."""
        self._life = moved(self, self._life, to)

    def _begin(self, *, is_async: bool) -> None:
        """Enter the session as the kind *is_async* says, if its sources serve it; `_join` or `_own` follows."""
        life = moved(self, self._life, Life.OPEN)
        for source in (self.source, self._replica):
            if source is not None and not source.serves(is_async=is_async):
                how = "`with session(...)`" if is_async else "`async with session(...)`"
                msg = f"session({source.describe()}) must be entered with {how}"
                raise ArgumentError(msg)
        self._life, self.is_async = life, is_async
        if self._deadline_given is not None:
            self.deadline = (monotonic() + self._deadline_given, self._deadline_given)

    def _join(self, outer: SessionState[L, K, S]) -> None:
        """The session was entered inside *outer*'s block: it shares its connections and its transaction."""
        if self.mode is not DEFAULT_MODE and self.mode != outer.mode:
            msg = (
                f"{self!r} asks for {self.mode.describe()}, but joins {outer!r}, whose transaction has "
                f"{outer.mode.describe()}; open it outside that session, or on another source"
            )
            raise ArgumentError(msg)
        self._joined = outer
        self.lock = outer.lock
        self._outer_deadline = outer.deadline
        if self.deadline is not None and (outer.deadline is None or self.deadline[0] < outer.deadline[0]):
            outer.deadline = self.deadline

    def _own(self, entered: FrameType, lock: K, borrow_lock: K, owner: Owner) -> None:
        """The session is its own, entered by the frame *entered* in *owner*; the scope makes it the current one."""
        self.lock, self._borrow_lock = lock, borrow_lock
        self._frame, self._site = entered, site(entered)
        self._owner = owner

    def _left_outer(self) -> None:
        """A joined session's block has ended (after `end`, maybe): its outer's deadline is its own again."""
        if self._life is Life.OPEN:
            self._move(Life.ENDED)
        outer = self._joined
        if outer is not None and self.deadline is not None and outer.deadline is self.deadline:
            outer.deadline = self._outer_deadline

    def _finishing(self) -> bool:
        """Whether ending the open session falls to the caller (its block's exit, or `end`): one ended is left."""
        if self._life is Life.UNOPENED:
            raise unusable(self, self._life)
        if self._life is not Life.OPEN:
            return False
        self._move(Life.ENDED)
        return True

    def _leave(self) -> Token[AnyState | None] | None:
        """The session's block has ended: the token to reset the context with, if it set it."""
        self._frame = self._site = None
        # A task that fails keeps its error, whose traceback may hold the session (a frame's local): the session
        # must not hold the task then.
        self._owner = None
        # Taken off first: a generator finalized in another context cannot reset it, and the token would tie the
        # context that still holds the session to it in a cycle.
        token, self._token = self._token, None
        return token

    def _check_usable(self) -> None:
        if self._life is not Life.OPEN:
            raise unusable(self, self._life)

    def _close_streams(self) -> list[S]:
        # Emptied, not replaced: each stream holds the list, and one left in it would be a cycle.
        streams = self.open_streams.copy()
        self.open_streams.clear()
        return streams

    def _detach(self) -> list[L]:
        """Take the session's leases off it."""
        leases = [lease for lease in (self.replica_lease, self.lease) if lease is not None]
        self.lease = self.replica_lease = None
        return leases

    def _replica_decided(self) -> bool:
        """Whether the replica lease is borrowed, or the replica given up for being behind."""
        return self.replica_lease is not None or self._replica_behind

    def _borrowed(self, lease: L, *, replica: bool) -> None:
        if replica:
            self.replica_lease = lease
        else:
            self.lease = lease
        if not self._tracked:
            self._tracked = True
            self.source.guard.track(self)
            self.source.counters.add("borrowed")
            logger.debug("%r borrowed a connection", self)

    def _released(self, *, committed: bool, unknown: bool = False) -> None:
        if self.source.guard.untrack(self):
            outcome = "commit_unknown" if unknown else "committed" if committed else "rolled_back"
            counters = self.source.counters
            counters.add("released")
            counters.add(outcome)
            logger.debug("%r ended (%s) and gave its connection back", self, outcome)


def outcome(sess: SessionState[L, K, S], exc: BaseException | None) -> tuple[bool, str | None]:
    """Before ending *sess*'s transactions: whether to roll back, and the `RolledBackError` message to raise when
    it must though the block did not raise. A transaction is committed only if it is still open and sound on
    every connection: a database error the code caught (an aborted transaction, a lost connection, a server shut
    down) makes the session roll back and raise `RolledBackError`."""
    if isinstance(exc, GeneratorExit):
        sess.source.guard.warn(sess, "its generator was closed before the `with session()` block ended")
    if exc is not None or sess._doomed:
        return True, None
    for lease in (sess.lease, sess.replica_lease):
        if lease is None:
            continue
        status = lease.conn.info.transaction_status
        if lease.tx is None:  # autocommit: each call ended its own transaction; a lost connection lost none
            continue
        if status != _INTRANS and not lease.pending:  # pending: nothing sent, nothing to commit
            return True, _rolled_back(sess, lost=status != _INERROR)
    return False, None


def _rolled_back(sess: SessionState[L, K, S], *, lost: bool) -> str:
    if lost:
        return (
            f"{sess!r}: its connection was lost (or the server ended it) during the session, after a database "
            f"error that the code caught; nothing was committed: let the error propagate, or retry the whole session"
        )
    return (
        f"{sess!r}: a database error inside the session was caught, but it had aborted the transaction, "
        f"so nothing was committed; wrap the call that may fail in `{'async ' if sess.is_async else ''}with "
        f"transaction():` so that its error undoes only that part, or declare the error in its stub's errors= "
        f"(each call is then undone alone when it raises it)"
    )
