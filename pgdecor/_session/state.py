"""What a session is, for both kinds: the context variable that holds the current one, its state, entering it,
and the decisions at its end. No I/O: borrowing and ending are `scope_async` and its generated `scope`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from contextvars import ContextVar, Token
from time import monotonic
from types import FrameType
from typing import Any

from psycopg import pq

from pgdecor._errors import ArgumentError, NoSessionError
from pgdecor._sources import fork as forked
from pgdecor._sources.config import DatabaseBase, counters_for
from pgdecor._sources.kinds import Source, describe_source, is_async_source, same_source
from pgdecor._sources.replicas import REPLICA_WAIT

from . import leaks
from .blocks import Site, encloses, site
from .modes import DEFAULT_MODE, Mode

__all__ = ["SessionState", "current", "current_session", "no_session_error", "session_to_join"]

#: The session open in this context (thread or task, and the tasks it starts), if any.
current: ContextVar[Any] = ContextVar("pgdecor.session", default=None)

logger = logging.getLogger("pgdecor")

_INTRANS = pq.TransactionStatus.INTRANS
_INERROR = pq.TransactionStatus.INERROR


class SessionState:
    """The state of a session (see `pgdecor.session`) and the decisions both kinds share."""

    __slots__ = (
        "_borrow_lock",
        "_deadline_given",
        "_doomed",
        "_ended",
        "_entered",
        "_finished",
        "_forked",
        "_frame",
        "_is_async",
        "_joined",
        "_outer_deadline",
        "_owner",
        "_replica",
        "_replica_behind",
        "_site",
        "_token",
        "_tracked",
        "activity",
        "after",
        "commit_token",
        "deadline",
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
        if replica is None and isinstance(source, DatabaseBase):
            replica = source.replica
        self._replica = replica
        #: Where the session was opened (file:line), for messages and the leak guard's warnings.
        self.opened_at = opened_at
        #: The connections borrowed from the source and from the replica (`_session.lease_async.AsyncLease` or its sync
        #: twin), each at its first use; None until then, and again once given back.
        self.lease: Any = None
        self.replica_lease: Any = None
        #: What a call holds while it uses the session's connections: an `asyncio.Lock` in an async session (tasks
        #: sharing the session take turns), a `threading.RLock` in a sync one. A joined session has its outer's.
        self.lock: Any = None
        #: The session's streams not closed yet: it ends them at exit.
        self.open_streams: list[Any] = []
        #: What the leak guard saw of the session's last results, and when (see `_session.leaks`).
        self.activity: tuple[Any, float] | None = None
        self._token: Token[Any] | None = None
        #: The outer session this one joined (same source): it does nothing of its own.
        self._joined: SessionState | None = None
        self._is_async = False
        self._entered = False
        self._ended = False
        self._finished = False
        #: Held while borrowing, so that a session's tasks or threads borrow one connection between them.
        self._borrow_lock: Any = None
        #: The thread or asyncio task that entered the session: what the leak guard checks. Tasks the owner starts
        #: inside the block share the session (and join it); the owner outlives them.
        self._owner: Any = None
        #: While it is open, the frame that entered the session (the one running its `with`), and for a
        #: generator's frame, where the generator was run from: whether a session opened later in the same thread
        #: or task is inside its block, and joins it (see `_session.blocks`).
        self._frame: FrameType | None = None
        self._site: Site | None = None
        self._tracked = False
        #: Set by `doom`: the session rolls back at exit although its block did not raise.
        self._doomed = False
        #: Set in a child process for a session that was open when its parent forked: its connection is the
        #: parent's, never to be used or ended here.
        self._forked = False

    @property
    def replica_wait(self) -> float:
        """Seconds to wait for the replica to replay past `after` before reading from the primary."""
        return getattr(self.source, "replica_wait", REPLICA_WAIT)

    def __repr__(self) -> str:
        state = "ended" if self._ended else "active" if self._entered else "not entered"
        kind = "async " if self._is_async else ""
        return f"<pgdecor {kind}session on {describe_source(self.source)} opened at {self.opened_at} ({state})>"

    @property
    def is_async(self) -> bool:
        return self._is_async

    @property
    def borrowed(self) -> bool:
        """Whether the session holds a borrowed connection now: then it has a transaction to end."""
        return self.lease is not None or self.replica_lease is not None

    def doom(self) -> None:
        """Make the session roll back when it ends, though its block does not raise (a middleware whose response
        says the request failed). Counted as rolled back; no error is raised for it."""
        (self._joined or self)._doomed = True

    def owner_gone(self) -> bool:
        """Whether the thread or task that entered the session has ended (so that nobody can end the session)."""
        owner = self._owner
        return not owner.is_alive() if isinstance(owner, threading.Thread) else owner is not None and owner.done()

    def reaped(self) -> list[Any]:
        """The leak guard ends the session: its leases, taken from it, to roll back and give back."""
        self._ended = self._finished = True
        self.open_streams.clear()  # each of its streams holds the list: left in it, they would be a cycle
        self._frame = self._site = None
        if self.owner_gone():
            # The context its owner left behind still holds it, and it held that context (its token) and, in async,
            # the task whose context it is: a cycle once nothing else holds them. An owner still there (idle past
            # the leak timeout) resets its context with the token when it leaves the block.
            self._token = self._owner = None
        counters = counters_for(self.source)
        counters.add("released")
        counters.add("rolled_back")
        return self._detach()

    # -- for the scopes of both kinds ---------------------------------------------------------------------------

    def _enter(self, *, is_async: bool) -> None:
        if self._entered:
            msg = f"{self!r} was already entered; call session(...) again for a new scope"
            raise NoSessionError(msg)
        for source in (self.source, self._replica):
            if source is not None and (source_is_async := is_async_source(source, is_async)) != is_async:
                how = "`async with session(...)`" if source_is_async else "`with session(...)`"
                msg = f"session({describe_source(source)}) must be entered with {how}"
                raise ArgumentError(msg)
        self._entered = True
        self._is_async = is_async
        if self._deadline_given is not None:
            self.deadline = (monotonic() + self._deadline_given, self._deadline_given)
        entered = sys._getframe(2)  # the frame running the `with` (or calling `__enter__`)
        outer = session_to_join(self.source, entered, is_async=is_async)
        if outer is not None:
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
        else:
            self.lock = asyncio.Lock() if is_async else threading.RLock()
            self._borrow_lock = asyncio.Lock() if is_async else threading.Lock()
            self._frame, self._site = entered, site(entered)
            self._token = current.set(self)
            self._owner = _owner(is_async=is_async)

    def _left_outer(self) -> None:
        """A joined session's block has ended: its outer's deadline is its own again."""
        self._ended = True
        outer = self._joined
        if outer is not None and self.deadline is not None and outer.deadline is self.deadline:
            outer.deadline = self._outer_deadline

    def _leave(self) -> None:
        self._ended = True
        self._frame = self._site = None
        # A task that fails keeps its error, whose traceback may hold the session (a frame's local): the session
        # must not hold the task then.
        self._owner = None
        # Taken off first: a generator finalized in another context cannot reset it, and the token would tie the
        # context that still holds the session to it in a cycle.
        token, self._token = self._token, None
        if token is not None:
            current.reset(token)

    def _check_usable(self) -> None:
        if not self._entered:
            msg = f"{self!r} is not entered; use it as `with session(...):` (or `async with`)"
            raise NoSessionError(msg)
        if self._forked:
            msg = (
                f"{self!r} was opened before this process was forked, and its connection belongs to the parent "
                f"process; open sessions (and Databases) in the child, after the fork"
            )
            raise NoSessionError(msg)
        if self._ended:
            msg = (
                f"{self!r} has ended; its connection was given back. "
                f"Make the call inside `with session(...)`, or open a new session"
            )
            raise NoSessionError(msg)

    def _close_streams(self) -> list[Any]:
        # Emptied, not replaced: each stream holds the list, and one left in it would be a cycle.
        streams = self.open_streams.copy()
        self.open_streams.clear()
        return streams

    def _outcome(self, exc: BaseException | None) -> tuple[bool, str | None]:
        """Before ending the transaction: whether to roll back, and the `RolledBackError` message to raise when it
        must though the block did not raise. A transaction is committed only if it is still open and sound on
        every connection: a database error the code caught (an aborted transaction, a lost connection, a server
        shut down) makes the session roll back and raise `RolledBackError`."""
        if isinstance(exc, GeneratorExit):
            leaks.warn_leak(self, "its generator was closed before the `with session()` block ended")
        if exc is not None or self._doomed:
            return True, None
        for lease in (self.lease, self.replica_lease):
            if lease is None:
                continue
            status = lease.conn.info.transaction_status
            if lease.tx is None:  # autocommit: each call ended its own transaction; a lost connection lost none
                continue
            if status != _INTRANS:
                return True, _rolled_back(self, lost=status != _INERROR)
        return False, None

    def _detach(self) -> list[Any]:
        """Take the session's leases off it."""
        leases = [lease for lease in (self.replica_lease, self.lease) if lease is not None]
        self.lease = self.replica_lease = None
        return leases

    def _replica_decided(self) -> bool:
        """Whether the replica lease is borrowed, or the replica given up for being behind."""
        return self.replica_lease is not None or self._replica_behind

    def _borrowed(self, lease: Any, *, replica: bool) -> None:
        if replica:
            self.replica_lease = lease
        else:
            self.lease = lease
        if not self._tracked:
            self._tracked = True
            leaks.track(self)
            counters_for(self.source).add("borrowed")
            logger.debug("%r borrowed a connection", self)

    def _released(self, *, committed: bool, unknown: bool = False) -> None:
        if leaks.untrack(self):
            outcome = "commit_unknown" if unknown else "committed" if committed else "rolled_back"
            counters = counters_for(self.source)
            counters.add("released")
            counters.add(outcome)
            logger.debug("%r ended (%s) and gave its connection back", self, outcome)


def _owner(*, is_async: bool) -> Any:
    if is_async:
        try:
            return asyncio.current_task()
        except RuntimeError:  # pragma: no cover - an async session outside a running loop cannot borrow
            return None
    return threading.current_thread()


def session_to_join(source: Source, entered: FrameType, *, is_async: bool) -> SessionState | None:
    """The session a session on *source*, of the kind *is_async* says, entered by the frame *entered*, joins: the
    current one, if it is on the same source, of the same kind, has not ended, and its block runs around
    *entered*. Tasks and threads that share its context run inside its block; in the thread or task that entered
    it, `_session.blocks.encloses` decides."""
    outer: SessionState | None = current.get()
    if outer is None or outer._is_async != is_async or not same_source(outer.source, source):
        return None
    entered_by, where = outer._frame, outer._site  # read first: the leak guard may end it meanwhile
    if outer._ended or entered_by is None:  # ended by its block, by `end`, by the leak guard, or by a fork
        return None
    if outer._owner is not _owner(is_async=is_async):
        return outer
    return outer if encloses(entered_by, where, entered) else None


def _rolled_back(sess: SessionState, *, lost: bool) -> str:
    if lost:
        return (
            f"{sess!r}: its connection was lost (or the server ended it) during the session, after a database "
            f"error that the code caught; nothing was committed: let the error propagate, or retry the whole session"
        )
    return (
        f"{sess!r}: a database error inside the session was caught, but it had aborted the transaction, "
        f"so nothing was committed; wrap the call that may fail in `{'async ' if sess._is_async else ''}with "
        f"transaction():` so that its error undoes only that part, or declare the error in its stub's errors= "
        f"(each call is then undone alone when it raises it)"
    )


def current_session(what: str, call: str = "", *, is_async: bool) -> SessionState:
    """The session of this context, which must be of the kind *what* (a stub, ``transaction``) needs; *call* is
    how it was called (``()``, ``.many()``), for the message."""
    sess: SessionState | None = current.get()
    if sess is None or sess._is_async is not is_async:
        raise no_session_error(what + call, sess, is_async=is_async)
    return sess


def no_session_error(what: str, sess: SessionState | None, *, is_async: bool) -> NoSessionError:
    """The error for a call made where no session of its kind is open."""
    opener = "async with session(...)" if is_async else "with session(...)"
    if sess is None:
        msg = f"{what} was called outside any session; call it inside `{opener}:`"
    elif is_async:
        msg = f"{what} is async but the current session is synchronous; open it with `async with session(...)`"
    else:
        msg = (
            f"{what} is synchronous but the current session is async; "
            f"declare the stub with `async def`, or open a sync session here with `with session(...)` (a Database "
            f"opened with `async with` serves sync sessions too)"
        )
    return NoSessionError(msg)


def _forget_after_fork() -> None:
    """In a forked child: the sessions open at the fork are the parent's. Their connections are made unreachable
    (see `_sources.fork`) and they are ended here without a word to the server; using one raises `NoSessionError`."""
    for s in leaks.forget_all():
        s._forked = s._ended = s._finished = True
        s._frame = s._site = None
        leases = s._detach()
        for lease in leases:
            forked.blind(lease.conn)
        # Kept, never finalized or given back; not even the wires are closed (their event loop's selector is
        # shared with the parent).
        forked.keep(leases)


forked.on_fork(_forget_after_fork)
