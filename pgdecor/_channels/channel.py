"""Notification channels: their names, what a listener stub subscribes to (`Subscription`), and what a listener is
told besides payloads (`Missed`). How a payload travels is `payload`'s; sending is `_stubs.notify`'s, listening
`_channels.listener_async`'s.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from psycopg import sql

from pgdecor._errors import SignatureError
from pgdecor._rows.json_dump import text_problem
from pgdecor._run import trace

from .payload import Payload

__all__ = [
    "MAX_CHANNEL_BYTES",
    "Missed",
    "Subscription",
    "channel_name",
    "listen_sql",
]

#: The longest channel name PostgreSQL takes (NAMEDATALEN - 1): ``pg_notify`` refuses a longer one, and ``LISTEN``
#: cuts it short to another name.
MAX_CHANNEL_BYTES = 63


@dataclass(frozen=True)
class Missed:
    """What a listener yields once it listens, and again each time it listens anew after losing its connection:
    notifications sent before then (or while it was not listening) may not be delivered, so read again what the
    channel announces (a table's recent rows, say) when one comes::

        for event in events:
            if isinstance(event, Missed):
                rescan()
            else:
                handle(event)
    """

    #: The channel listened to.
    channel: str
    #: Why: ``"started"`` the first time, else what ended the previous connection.
    reason: str


def channel_name(where: str, channel: object) -> str:
    """*channel*, checked to be a name PostgreSQL takes as it is; else `SignatureError` from *where*."""
    if not isinstance(channel, str):
        msg = f"{where} takes the channel's name as a string, not {type(channel).__qualname__} {channel!r:.40}"
        raise SignatureError(msg)
    if not channel:
        msg = f"{where}: the channel's name is empty; name it (e.g. 'orders')"
        raise SignatureError(msg)
    problem = text_problem(channel, "a channel name")
    if problem is not None:
        msg = f"{where}: the channel name {channel!r:.80} has {problem}; name it with plain text"
        raise SignatureError(msg)
    size = len(channel.encode())
    if size > MAX_CHANNEL_BYTES:
        msg = (
            f"{where}: the channel name {channel!r:.80} is {size} bytes long; PostgreSQL's names are at most "
            f"{MAX_CHANNEL_BYTES} bytes (pg_notify refuses a longer one, and LISTEN would cut it short): shorten it"
        )
        raise SignatureError(msg)
    return channel


def listen_sql(channel: str) -> sql.Composed:
    """``LISTEN "channel"``: the name quoted, so that it is the very one ``pg_notify`` is given (case and all)."""
    return sql.SQL("LISTEN {}").format(sql.Identifier(channel))


@dataclass(frozen=True)
class Subscription:
    """What a listener stub says, for the listeners its calls return (of either kind)."""

    stub: str
    channel: str
    payload: Payload
    #: Seconds without a notification after which the connection is checked, and how long the check may take.
    check_every: float
    check_timeout: float
    #: Whether a payload that does not decode raises `PayloadError` (else it is skipped with a WARNING).
    raise_undecodable: bool

    @functools.cached_property
    def operation(self) -> trace.Operation:
        """What the spans of its listeners' subscriptions say (see `_run.trace`)."""
        operation = trace.Operation(self.stub, None, None)
        operation.operation = "LISTEN"
        operation.name = f"LISTEN {self.channel}"
        operation.attributes = {
            **operation.attributes,
            "db.operation.name": "LISTEN",
            "db.query.summary": operation.name,
            "db.query.text": listen_sql(self.channel).as_string(None),
        }
        return operation
