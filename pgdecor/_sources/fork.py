"""Fork safety: a connection opened before ``fork()`` is never used, or closed, by the child.

After a fork the child holds copies of the parent's sockets. Using one would mix two processes' messages on one
server connection (answers going to the wrong request), and even closing one would end the parent's connection
(libpq says goodbye to the server when a connection object is freed). So in the child, right after the fork:

- the socket of every connection of a pool pgdecor knows (a `Database`'s, or one a session borrowed from) is
  replaced by ``/dev/null``: whatever the child does with those connections, or when it frees them, never
  reaches the server, and the parent's connection stays intact (where psycopg_pool keeps its connections in a way
  not known here, `_wire.internals.idle_connections`, that of every connection the child inherited, with a WARNING);
- those pools are marked inherited: a `Database` opens a pool of its own at its first use in the child, and a
  pool of the user's raises `NoSessionError` saying to open it after the fork;
- sessions open at the fork are ended for the child without touching their connections (see `_session.state`).
"""

from __future__ import annotations

import gc
import logging
import os
import weakref
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from psycopg import BaseConnection

from pgdecor._errors import NoSessionError
from pgdecor._wire import internals

__all__ = ["Holder", "blind", "inherit", "inherited", "keep", "on_fork", "own", "track"]

P = TypeVar("P")

logger = logging.getLogger("pgdecor")


class Holder(Protocol):
    """What holds a pool pgdecor opened (a `Database`'s pool of one kind, `_sources.pool_async.AsyncPool`)."""

    @property
    def opened(self) -> object:
        """The pool, while it is open."""
        ...

    def renew(self) -> None:
        """Make new what another thread may have held at the fork (a lock)."""
        ...


#: The holders of the pools pgdecor opened, and the pools of the user's sessions borrowed from, in this process:
#: what a forked child must not share.
_holders: weakref.WeakSet[Holder] = weakref.WeakSet()
_pools: weakref.WeakSet[Any] = weakref.WeakSet()
#: Pools inherited from a parent process, which this process must leave alone.
_inherited: weakref.WeakSet[Any] = weakref.WeakSet()
#: Inherited objects kept referenced, so that they are never finalized while the child runs.
_kept: list[Any] = []
_callbacks: list[Callable[[], None]] = []


def track(holder: Holder) -> None:
    """Note the holder of a pool pgdecor opened."""
    _holders.add(holder)


def own(pool: P) -> P:
    """A pool of the user's a session borrows from, checked to be this process's own, and noted."""
    if inherited(pool):
        msg = (
            f"{pool!r} was opened before this process was forked, and its connections belong to the parent "
            f"process; open the pool in the child (after the fork: a post-fork hook, or lazily), or use a "
            f"pgdecor Database, which does so by itself"
        )
        raise NoSessionError(msg)
    _pools.add(pool)
    return pool


def inherit(pool: Any) -> None:
    """Mark *pool* inherited, and keep it: never to be used or closed here."""
    _inherited.add(pool)
    keep(pool)


def keep(obj: Any) -> None:
    """Keep an inherited object referenced for the life of this process."""
    _kept.append(obj)


def inherited(pool: Any) -> bool:
    """Whether *pool* was opened by a parent of this process."""
    return pool in _inherited


def on_fork(callback: Callable[[], None]) -> None:
    """Run *callback* in each forked child, after the pools are made safe."""
    _callbacks.append(callback)


def blind(conn: Any) -> None:
    """Point *conn*'s socket at /dev/null in this process, leaving the parent's connection alone."""
    try:
        fd = conn.pgconn.socket
    except Exception:  # noqa: BLE001 - closed or broken: no socket left to share
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def _after_fork_in_child() -> None:
    pools = {id(p): p for p in _pools}
    for holder in list(_holders):
        holder.renew()
        pool = holder.opened
        if pool is not None:
            pools[id(pool)] = pool
    known = True
    for pool in pools.values():
        inherit(pool)
        idle = internals.idle_connections(pool)
        if idle is None:
            known = False  # a psycopg_pool that keeps its connections another way
            continue
        for conn in idle:
            blind(conn)
    if pools:  # and those it handed out, which point back at it; every one, if that is not known
        for obj in gc.get_objects():
            # Not isinstance(), which reads `__class__`: a lazy proxy (Django's settings, storages) evaluates itself
            # there, and may raise, which would end this handler before the sessions are made safe.
            if issubclass(type(obj), BaseConnection) and (not known or id(internals.pool_of(obj)) in pools):
                blind(obj)
    if not known:
        logger.warning(
            "pgdecor: this psycopg_pool keeps its connections in a way pgdecor does not know: in this forked "
            "process, every connection opened before the fork is unusable (the parent's stay intact)"
        )
    for callback in _callbacks:
        callback()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
