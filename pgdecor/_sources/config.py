"""What a `Database` is given, checked (`DatabaseConfig`), and the settings of the connections pgdecor opens (a
`Database`'s, a conninfo string's). The database as a source of connections is `_sources.database`;
`pgdecor.Database` itself, which adds sessions, is in `_service.database`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from typing_extensions import Self

from pgdecor._errors import ArgumentError, UnreachableError
from pgdecor._limits.options import seconds_option
from pgdecor._limits.slow import slow_threshold
from pgdecor._secrets import described, explained, masked, misread, scrubbed

from .replicas import REPLICA_TIMEOUT, REPLICA_WAIT, Tokens
from .source import Settings, Source

__all__ = [
    "BORROW_DEADLINE",
    "CHECK_GRACE",
    "IDLE_IN_TRANSACTION_TIMEOUT",
    "NETWORK",
    "DatabaseConfig",
    "Observed",
    "PoolSettings",
    "check_conninfo",
    "network_defaults",
    "unreachable",
    "where",
]

#: Seconds after which the server ends a backend left idle in a transaction, on the connections pgdecor opens
#: itself (conninfo-string sessions; `Database` takes its own value). A backstop, should a leak escape the guard.
#: It is not set behind a pooler, where the server connection serves other clients too (see `_wire.poolers`).
IDLE_IN_TRANSACTION_TIMEOUT = 60.0

#: libpq's TCP settings on the connections pgdecor opens, where the conninfo or the keyword arguments do not give
#: them. An idle connection whose peer vanished without closing it (a dropped network, a host powered off, a NAT
#: or firewall that forgot it) is found after 30 s of silence and 3 probes 10 s apart unanswered; data the peer
#: has not acknowledged for 60 s ends the connection (``tcp_user_timeout``, in ms: the same minute, so that
#: neither cuts the other short). Without them, TCP waits about 15 minutes for acknowledgements, and for ever on
#: an idle connection. libpq before 12 does not know ``tcp_user_timeout`` (and refuses to connect with it).
NETWORK: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    **({"tcp_user_timeout": 60_000} if pq.version() >= 120000 else {}),
}

#: When the borrow being made in this context must have its connection (a `time.monotonic` time): the check of
#: the connection the pool hands out waits for its answer until then (see `_sources.pool_async.AsyncPool`).
BORROW_DEADLINE: ContextVar[float | None] = ContextVar("pgdecor_borrow_deadline", default=None)

#: Whether the borrow being made in this context is a call's, which can pay the check of a connection given back
#: moments ago with its first statement (see `_wire.owed`).
OWING: ContextVar[bool] = ContextVar("pgdecor_owing", default=False)

#: Seconds a connection's check at borrow is given at the least: one handed out at its borrow's last moment is not
#: thrown away healthy for want of time to answer.
CHECK_GRACE = 0.1


def network_defaults(conninfo: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The `NETWORK` settings that neither *conninfo* nor the keyword arguments *given* set: what is given wins."""
    named = conninfo_to_dict(conninfo)
    return {name: value for name, value in NETWORK.items() if name not in named and name not in given}


def check_conninfo(what: str, conninfo: str) -> None:
    """Raise `ArgumentError` unless *conninfo* is a connection string or URI libpq can read (nothing connects).

    The message shows the conninfo's keywords, never its values: libpq's own error may quote any of them.
    """
    __tracebackhide__ = True  # pytest would show the frame's arguments, the conninfo itself among them
    try:
        info = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as err:
        why = explained(str(err).strip(), conninfo)
    except UnicodeDecodeError:  # psycopg's, of a value percent-decoded; the error holds the value's bytes
        why = "a percent-encoded value is not UTF-8"
    else:
        if not misread(conninfo, info):
            return
        msg = (
            f"{what}: {masked(conninfo)!r:.60} has a password with a '/' or '@' written as it is, which libpq "
            f"reads as part of the host, port or database name; write them %2F and %40 in a URI"
        )
        raise ArgumentError(msg)
    msg = (
        f"{what}: {masked(conninfo)!r:.60} is not a connection string libpq can read ({why}); write "
        f"'postgresql://user@host:5432/dbname' or 'host=... dbname=...'"
    )
    raise ArgumentError(msg)  # outside the handler: libpq's error, which quotes the conninfo, is not its context


def where(conninfo: str) -> str:
    """The server a connection string names, for messages: ``host:port/dbname`` (libpq's defaults left out)."""
    info = conninfo_to_dict(conninfo)
    host = info.get("host") or info.get("hostaddr") or "the default socket"
    shown = f"{host}{':' + str(info['port']) if info.get('port') else ''}/{info.get('dbname') or ''}"
    # a password libpq misread (a "/" in it, written as it is) can land in the host, port or dbname
    return scrubbed(shown, conninfo)


def unreachable(source: str, conninfo: str | None) -> str:
    """The note on the error of a session on *source* (described) that could not get a connection to the server
    *conninfo* names."""
    server = where(conninfo) if conninfo else "its server"
    return (
        f"pgdecor: a session on {source} could not get a connection to {server}; check that the server runs there "
        f"and accepts this connection (host, port, user, password, dbname in the conninfo)"
    )


def _conninfo(conninfo: object) -> str:
    if not isinstance(conninfo, str):
        msg = f"Database() takes a connection string, not {described(conninfo)}"
        raise ArgumentError(msg)
    check_conninfo("Database()", conninfo)
    return conninfo


def _secret(secret: object) -> str | bytes | None:
    if secret is None or (isinstance(secret, (str, bytes)) and len(secret) >= 16):
        return secret
    msg = (
        "Database(secret=...) takes the key of the service's commit tokens: a str or bytes of 16 characters or "
        f"more (e.g. `secrets.token_urlsafe(32)`, kept in the service's settings), not {type(secret).__qualname__}"
    )
    raise ArgumentError(msg)


def _seconds(name: str, value: object, *, none: bool = False, zero: bool = False) -> Any:
    """``Database(name=value)`` checked (see `seconds_option`), else `ArgumentError` saying what it takes."""
    return seconds_option(f"Database({name}=...)", value, ArgumentError, zero=zero, none=none)


def _sizes(min_size: object, max_size: object) -> tuple[int, int]:
    for name, value, least in (("min_size", min_size, 0), ("max_size", max_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            msg = f"Database({name}=...) takes a whole number of connections, {least} or more; not {value!r:.40}"
            raise ArgumentError(msg)
    assert isinstance(min_size, int)
    assert isinstance(max_size, int)
    if max_size < min_size:
        msg = f"Database(max_size={max_size}) is smaller than min_size={min_size}; raise max_size or lower min_size"
        raise ArgumentError(msg)
    return min_size, max_size


def _flag(name: str, value: object, *, none: bool = False) -> Any:
    if isinstance(value, bool) or (none and value is None):
        return value
    msg = f"Database({name}=...) takes True or False{', or None' if none else ''}; not {value!r:.40}"
    raise ArgumentError(msg)


class DatabaseConfig:
    """What a `Database` was given (see there), checked; and what its pools (`PoolSettings`) and sessions
    (`Settings`) take of it. Its signature is `pgdecor.Database`'s: the one list of the options."""

    def __init__(  # `self: Self`: the replica is typed as a database of the class made (a `Database`'s is one)
        self: Self,
        conninfo: str,
        *,
        replica: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        idle_in_transaction_timeout: float | None = IDLE_IN_TRANSACTION_TIMEOUT,
        leak_timeout: float | None = -1.0,
        prepare: bool | None = None,
        check: bool = True,
        replica_wait: float = REPLICA_WAIT,
        replica_timeout: float = REPLICA_TIMEOUT,
        secret: str | bytes | None = None,
        slow_call: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.conninfo = _conninfo(conninfo)
        self.min_size, self.max_size = _sizes(min_size, max_size)
        #: Seconds a borrow waits for a connection, its check included; also what opening waits for the first.
        self.timeout: float = _seconds("timeout", timeout)
        self.idle_in_transaction_timeout = _seconds(
            "idle_in_transaction_timeout", idle_in_transaction_timeout, none=True
        )
        if leak_timeout != -1.0:
            _seconds("leak_timeout", leak_timeout, none=True, zero=True)
        self.leak_timeout = idle_in_transaction_timeout if leak_timeout == -1.0 else leak_timeout
        self.prepare = _flag("prepare", prepare, none=True)
        self.check = _flag("check", check)
        #: Seconds a session given a token waits for the replica to replay that far (see `session`'s ``after``).
        self.replica_wait = _seconds("replica_wait", replica_wait, zero=True)
        #: Seconds a session waits for a connection to the replica before reading from the primary.
        self.replica_timeout = _seconds("replica_timeout", replica_timeout)
        #: The key of the commit tokens its sessions hand out and accept (see `_sources.replicas.Tokens`).
        self.tokens = Tokens(_secret(secret))
        #: Seconds above which a call of its sessions is logged (WARNING) and counted as slow (see `_limits.slow`).
        self.slow_call = slow_threshold("Database(slow_call=...)", slow_call, ArgumentError)
        self.kwargs = kwargs
        #: The replica: a database of its own, made of this one's options, opened and closed with it.
        self.replica: Self | None = None if replica is None else self._replica(replica)
        #: Where the database's sessions borrow.
        self._source = self._made()

    def _made(self) -> Source:
        """The database's source, made of its options (by `pgdecor.Database`, which adds the service)."""
        raise NotImplementedError

    def _replica(self, conninfo: str) -> Self:
        """The database of the replica at *conninfo*, made of this one's options: its pools', and the commit tokens'
        key and `replica_timeout` that sessions use there. `replica_wait` and `slow_call` keep their defaults:
        sessions that read there wait and are timed as their primary says."""
        replica = copy.copy(self)
        replica.conninfo, replica.kwargs, replica.replica = _conninfo(conninfo), dict(self.kwargs), None
        replica.replica_wait, replica.slow_call = REPLICA_WAIT, None
        replica._source = replica._made()
        return replica

    def _pools(self) -> PoolSettings:
        """What the database's pools take of its options."""
        return PoolSettings(
            self.conninfo,
            dict(self.kwargs),
            self.min_size,
            self.max_size,
            self.timeout,
            self.idle_in_transaction_timeout,
            self.prepare,
            self.check,
        )

    def _settings(self) -> Settings:
        """What the database's sessions take of its options."""
        return Settings(self.replica_wait, self.replica_timeout, self.slow_call, self.tokens)


@dataclass(frozen=True)
class PoolSettings:
    """What a database's pools take of its options (see `DatabaseConfig`)."""

    conninfo: str
    kwargs: dict[str, Any]
    min_size: int
    max_size: int
    timeout: float
    idle_in_transaction_timeout: float | None
    prepare: bool | None
    check: bool

    @property
    def shown(self) -> str:
        """The database's server, for its repr: ``host:port/dbname``, never a secret."""
        info = conninfo_to_dict(self.conninfo)
        shown = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/{info.get('dbname') or ''}"
        return scrubbed(shown, self.conninfo)  # as in `where`

    @property
    def name(self) -> str:
        """The database, for the messages of its pools."""
        return f"<pgdecor Database {self.shown}>"

    def pool_kwargs(self) -> dict[str, Any]:
        return {
            "min_size": self.min_size,
            "max_size": self.max_size,
            "timeout": self.timeout,
            "kwargs": self.connect_kwargs(),
            "open": False,
        }

    def connect_kwargs(self) -> dict[str, Any]:
        """The options of the connections the database opens."""
        return {"autocommit": True, **network_defaults(self.conninfo, self.kwargs), **self.kwargs}

    def first_conninfo(self) -> str:
        """The conninfo of the connection made once when a pool opens, to find at once a server that cannot be
        reached: libpq's ``connect_timeout`` bounded by `timeout` (2 s at the least, libpq's least), unless the
        conninfo or the keyword arguments give one."""
        if "connect_timeout" in conninfo_to_dict(self.conninfo) or "connect_timeout" in self.kwargs:
            return self.conninfo
        return make_conninfo(self.conninfo, connect_timeout=max(2, math.ceil(self.timeout)))

    def unreachable(self, err: psycopg.OperationalError) -> UnreachableError:
        """The error opening a pool raises when its first connection fails with *err*."""
        reason = scrubbed(" ".join(str(err).split()), self.conninfo)
        msg = (
            f"pgdecor: {self.name} could not connect to {masked(self.conninfo)!r:.120} when opened: {reason}; check "
            f"that the server runs there and accepts this connection (host, port, user, password, dbname)"
        )
        return UnreachableError(msg)

    def timed_out(self, started: float, unanswered_at: float) -> str:
        """What a borrow begun at *started* (`time.monotonic`) that got no connection within `timeout` says, a
        connection's check having last gone unanswered at *unanswered_at*."""
        if unanswered_at >= started:
            why = (
                "the server did not answer the check of a connection in that time (it is stopped or overloaded, or "
                "the network to it is down); that connection was closed, and the pool opens others as the server "
                "answers again: look at the server, or give Database(timeout=...) more seconds if it is only slow"
            )
        else:
            why = (
                f"all of its max_size={self.max_size} connections were in use by other sessions, or none could be "
                f"opened (the pool logs why, logger 'psycopg.pool'): end sessions sooner or raise max_size or "
                f"timeout, and check that the server runs there and accepts this connection (host, port, user, "
                f"password, dbname in the conninfo)"
            )
        return f"pgdecor: {self.name} gave no connection within timeout={self.timeout:g} s: {why}"


@dataclass
class Observed:
    """What a database's pools (of both kinds) have seen of its server, for what it says."""

    #: Whether the last connection configured was behind a pooler (None: none configured yet).
    pooler: bool | None = None
    #: When (`time.monotonic`) a connection last went unanswered by its check at borrow: what a borrow that timed
    #: out since says happened.
    unanswered_at: float = float("-inf")
