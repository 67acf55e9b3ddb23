"""Replicas that read a session's writes across requests: the token a writing session hands out (the position in
the primary's write-ahead log after its COMMIT, sealed), what a later session given it asks of a replica (whether
it has replayed that far) before it reads there, and how a replica that cannot be reached is given up for a while.
No I/O: the scopes and leases ask.

A token travels through clients (a cookie, a header), so it is sealed with a key of the service's: the position is
encrypted (a client learns nothing of the service's write volume) and authenticated together with the identifier
of the database cluster it came from (a token from another service, or made up, is rejected: counted, never
waited for). HMAC-SHA-256 is the only primitive, as a pseudo-random function: ``pad = HMAC(k_enc, nonce)``
encrypts, ``HMAC(k_mac, cluster || nonce || ciphertext)`` authenticates.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field

from pgdecor._errors import ArgumentError

__all__ = [
    "AHEAD",
    "LOOK",
    "REPLICA_RETRY",
    "REPLICA_TIMEOUT",
    "REPLICA_WAIT",
    "WAL_POSITION",
    "Health",
    "Tokens",
    "health_of",
    "is_token",
    "process_tokens",
    "replay_token",
]

logger = logging.getLogger("pgdecor")

#: Seconds an async session given a token waits for its replica to replay that far, before reading from the primary.
REPLICA_WAIT = 1.0

#: Seconds a session waits for a connection to its replica before it reads from the primary instead.
REPLICA_TIMEOUT = 2.0

#: Seconds a replica that could not be reached is left alone (sessions read from the primary) before one session
#: tries it again.
REPLICA_RETRY = 5.0

#: Once a session's COMMIT is in the primary's write-ahead log: its position, and the cluster's identifier.
WAL_POSITION = (
    "SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text,"
    " (SELECT system_identifier FROM pg_catalog.pg_control_system())"
)

#: What a replica is asked before a session given a token reads there: whether it has replayed past the token's
#: position (a server that is not a standby has its own writes), and the cluster's identifier.
LOOK = (
    "SELECT COALESCE("
    "pg_catalog.pg_last_wal_replay_lsn() OPERATOR(pg_catalog.>=) %s::pg_catalog.pg_lsn,"
    " NOT pg_catalog.pg_is_in_recovery()),"
    " (SELECT system_identifier FROM pg_catalog.pg_control_system())"
)

#: Whether a token's position is beyond the primary's write-ahead log (asked once, before a wait for a replica).
AHEAD = "SELECT %s::pg_catalog.pg_lsn OPERATOR(pg_catalog.>) pg_catalog.pg_current_wal_insert_lsn()"

#: A token's text: 32 bytes (nonce, sealed position, tag) in unpadded base64url. Nothing else is read further.
_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
_NONCE, _SEALED, _TAG = 8, 8, 16
_CONTEXT = b"pgdecor commit token v1"


class Tokens:
    """The key that seals and opens commit tokens: a service's secret (give the same one to every process that
    serves it, so that each accepts the others' tokens), or one made at random for this process."""

    __slots__ = ("_enc", "_mac")

    def __init__(self, secret: str | bytes | None = None) -> None:
        if secret is None:
            secret = os.urandom(32)
        elif isinstance(secret, str):
            secret = secret.encode()
        self._enc = hmac.new(secret, _CONTEXT + b" enc", hashlib.sha256).digest()
        self._mac = hmac.new(secret, _CONTEXT + b" mac", hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "<pgdecor commit-token key>"  # never the key

    def seal(self, position: str, cluster: int) -> str:
        """The token for the write-ahead log *position* (``'0/3000148'``) of the cluster *cluster*."""
        nonce = os.urandom(_NONCE)
        sealed = _xor(_lsn_number(position).to_bytes(_SEALED, "big"), self._pad(nonce))
        tag = self._tag(cluster, nonce + sealed)
        return base64.urlsafe_b64encode(nonce + sealed + tag).rstrip(b"=").decode()

    def position(self, token: str) -> str:
        """The position *token* (of the right shape: see `replay_token`) carries, unauthenticated yet: see `opens`."""
        raw = _raw(token)
        number = int.from_bytes(_xor(raw[_NONCE : _NONCE + _SEALED], self._pad(raw[:_NONCE])), "big")
        return f"{number >> 32:X}/{number & 0xFFFFFFFF:X}"

    def opens(self, token: str, cluster: int) -> bool:
        """Whether *token* was sealed with this key for the cluster *cluster*."""
        raw = _raw(token)
        return hmac.compare_digest(self._tag(cluster, raw[: _NONCE + _SEALED]), raw[_NONCE + _SEALED :])

    def _pad(self, nonce: bytes) -> bytes:
        return hmac.new(self._enc, nonce, hashlib.sha256).digest()[:_SEALED]

    def _tag(self, cluster: int, body: bytes) -> bytes:
        message = (cluster & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big") + body
        return hmac.new(self._mac, message, hashlib.sha256).digest()[:_TAG]


#: The key of sessions on sources that bring none of their own (see `_sources.source.Settings`): made at import, so
#: that the processes a service forks share it.
process_tokens = Tokens()


def replay_token(what: str, token: object) -> str | None:
    """*token* (a session's `commit_token`), checked for its shape: anything else is an `ArgumentError` before
    anything is sent. Whether it was sealed with the service's key is known at the replica (see `LOOK`)."""
    if token is None:
        return None
    if not isinstance(token, str) or not _SHAPE.fullmatch(token):
        msg = (
            f"{what}: after={token!r:.40} is not a token a session handed out (its `commit_token`, 43 characters "
            f"such as 'AbC...'); pass None when there is none"
        )
        raise ArgumentError(msg)
    return token


def is_token(text: str) -> bool:
    """Whether *text* has a token's shape (no more is read of a cookie that has not)."""
    return len(text) == 43 and _SHAPE.fullmatch(text) is not None


def waits(bound: float) -> list[float]:
    """The pauses between looks at a replica that is behind, adding up to *bound* seconds: short at first (a
    replica is usually milliseconds behind), then longer."""
    out: list[float] = []
    pause, total = 0.002, 0.0
    while total < bound:
        step = min(pause, bound - total)
        out.append(step)
        total += step
        pause = min(pause * 2, 0.05)
    return out


@dataclass
class Health:
    """Whether a replica can be reached: after a failure, sessions read from the primary without trying it for
    `REPLICA_RETRY` seconds; then one session tries it again (the others still read from the primary). The outage
    is logged once, when it begins, and once when it ends."""

    name: str
    retry: float = REPLICA_RETRY
    _down_until: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def skip(self) -> bool:
        """Whether a session should read from the primary without trying the replica (claims the next try when
        the replica has been left alone long enough)."""
        with self._lock:
            if self._down_until is None:
                return False
            now = time.monotonic()
            if now < self._down_until:
                return True
            self._down_until = now + self.retry  # this session tries; the others keep to the primary meanwhile
            return False

    def failed(self, err: BaseException) -> None:
        with self._lock:
            began = self._down_until is None
            self._down_until = time.monotonic() + self.retry
        if began:
            logger.warning(
                "pgdecor: the replica %s cannot be reached (%s); readonly calls run on the primary, and the replica "
                "is tried again every %g s",
                self.name,
                str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__,
                self.retry,
            )

    def reached(self) -> None:
        if self._down_until is None:
            return
        with self._lock:
            ended, self._down_until = self._down_until, None
        if ended is not None:
            logger.warning("pgdecor: the replica %s can be reached again; readonly calls run there", self.name)


#: The health of replicas that are not a `Database` (which keeps its own), by conninfo or by the id of a pool.
_health: dict[object, Health] = {}


def health_of(key: object, name: str) -> Health:
    """Whether the replica known by *key* (named *name* in the log) can be reached."""
    found = _health.get(key)
    if found is None:
        found = _health.setdefault(key, Health(name))
    return found


def _raw(token: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(token + "=")
    except (binascii.Error, ValueError) as err:  # pragma: no cover - the shape was checked
        raise ArgumentError(f"{token!r:.40} is not a commit token") from err


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def _lsn_number(position: str) -> int:
    found = _LSN.fullmatch(position)
    if found is None:
        msg = f"{position!r:.40} is not a write-ahead log position"
        raise ArgumentError(msg)
    return int(found[1], 16) << 32 | int(found[2], 16)
