"""Replicas that read a session's writes across requests: the token a writing session hands out (the position in
the primary's write-ahead log after its COMMIT), and what a later session given it asks of a replica (whether it
has replayed that far) before it reads there. No I/O: the scopes and leases ask.
"""

from __future__ import annotations

import re

from ._errors import ArgumentError

__all__ = ["CAUGHT_UP", "REPLICA_WAIT", "WAL_POSITION", "replay_token"]

#: Seconds a session given a token waits for its replica to replay that far, before reading from the primary.
REPLICA_WAIT = 1.0

# Operators, functions and types named with their schema, whatever the search_path (a look-alike never runs).

#: The primary's write-ahead log position once a session's COMMIT is in it: the token.
WAL_POSITION = "SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text"

#: Whether a replica has replayed past a token's position (a server that is not a standby has its own writes).
CAUGHT_UP = (
    "SELECT coalesce(pg_catalog.pg_last_wal_replay_lsn() OPERATOR(pg_catalog.>=) %s::pg_catalog.pg_lsn, "
    "NOT pg_catalog.pg_is_in_recovery())"
)

_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")


def replay_token(what: str, token: object) -> str | None:
    """*token* (a session's `commit_token`), checked: it may come from a cookie or a header, so anything but a
    token pgdecor handed out is an `ArgumentError`, before anything is sent."""
    if token is None:
        return None
    if not isinstance(token, str) or not _LSN.fullmatch(token):
        msg = (
            f"{what}: after={token!r:.40} is not a token a session handed out (its `commit_token`, such as "
            f"'0/3000148'); pass None when there is none"
        )
        raise ArgumentError(msg)
    return token


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
