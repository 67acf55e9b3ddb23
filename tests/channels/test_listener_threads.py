"""A sync listener iterated in one thread and closed from another: threads are sync by nature, so this test has no
async twin (the other tests of notifications are tests/channels/test_notifications_async.py's, and of its generated
twin)."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from tests.channels.test_notifications import backend_exists, channel, listener, wait_until


def test_closing_from_another_thread_ends_a_waiting_iteration(
    pg_server_dsn: str, admin: psycopg.Connection[Any]
) -> None:
    """`close` called from another thread wakes the iteration waiting for a notification; the backend goes."""
    events = listener(channel(), int)(pg_server_dsn)
    got: list[Any] = []

    def consume() -> None:
        for item in events:
            got.append(item)  # noqa: PERF402 - each item as it comes, watched by the test's thread

    consumer = threading.Thread(target=consume)
    consumer.start()
    wait_until(lambda: events.backend_pid is not None and len(got) == 1, "the listener listens")
    pid = events.backend_pid
    assert pid is not None
    events.close()
    consumer.join(10)
    assert not consumer.is_alive()
    assert events.backend_pid is None
    wait_until(lambda: not backend_exists(admin, pid), "its backend has ended")
    assert list(events) == []
