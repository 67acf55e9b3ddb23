"""The listener's promise, tested the way production breaks it: 10,000 notifications from concurrent writers (some
of their transactions rolled back) while the listener's backend is terminated and the server restarted. Every
notification committed while the listener listened is delivered once, in order per writer; those lost while it
did not are behind a `Missed`; none from a transaction that did not commit (sync and async listeners)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import psycopg
import pytest

import pgdecor
from pgdecor import CommitUnknownError, Database, Missed, listen, notify
from pgdecor.testing import TemporaryServer

WRITERS = 4
#: Notifications each writer has committed when it stops, sent this many to a transaction.
PER_WRITER = 2500
PER_TRANSACTION = 5
#: Every this many transactions of a writer, one sends its notifications and then rolls back.
ROLLBACK_EVERY = 6
#: The writers' last notification, once every fault is over: the listener reads until it has each writer's.
END = 10**9
#: Committed notifications (of all writers) after which the listener's backend is terminated, then the server
#: restarted.
TERMINATE_AT, RESTART_AT = 2500, 5000


@dataclass(frozen=True)
class Tick:
    writer: int
    seq: int


@notify("soak")
def tick(event: Tick) -> None: ...


@listen("soak")
def ticks(source: str) -> Iterator[Tick | Missed]: ...


@listen("soak")
def aticks(source: str) -> AsyncIterator[Tick | Missed]: ...


class _AbandonedError(Exception):
    """Raised by a writer inside its session: the transaction rolls back after its notifications were sent."""


def _abandon() -> NoReturn:
    raise _AbandonedError


@pytest.fixture(scope="module")
def server() -> Iterator[TemporaryServer]:
    """A server of this module's own, which its tests restart."""
    with TemporaryServer() as started:
        yield started


class Run:
    """The state of one run, shared by the writers, the listener's consumer and the test's own thread."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        #: (writer, seq) → "committed", "rolled back", "failed" (an error before COMMIT) or "unknown" (during it).
        self.outcomes: dict[tuple[int, int], str] = {}
        self.committed = 0
        #: What the listener yielded, in order.
        self.stream: list[Tick | Missed] = []
        self.ends = 0
        #: Set while the server accepts connections: writers wait on it after an error.
        self.up = threading.Event()
        self.up.set()
        self.errors: list[BaseException] = []

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        with self.changed:
            if not self.changed.wait_for(condition, timeout):
                pytest.fail(f"timed out waiting until {what}")

    def record(self, seqs: list[tuple[int, int]], outcome: str) -> None:
        with self.changed:
            for key in seqs:
                self.outcomes[key] = outcome
            if outcome == "committed":
                self.committed += len(seqs)
            self.changed.notify_all()

    def received(self, item: Tick | Missed) -> bool:
        """Keep what the listener yielded; whether it was the last writer's end."""
        with self.changed:
            self.stream.append(item)
            if isinstance(item, Tick) and item.seq == END:
                self.ends += 1
            self.changed.notify_all()
            return self.ends == WRITERS

    def markers(self) -> int:
        return sum(isinstance(item, Missed) for item in self.stream)


def _writer(run: Run, db: Database, writer: int) -> None:
    seq = transactions = committed = 0
    try:
        while committed < PER_WRITER:
            keys = [(writer, s) for s in range(seq, seq + PER_TRANSACTION)]
            seq += PER_TRANSACTION
            transactions += 1
            try:
                with db.session():
                    for key in keys:
                        tick(Tick(*key))
                    if transactions % ROLLBACK_EVERY == 0:
                        _abandon()
            except _AbandonedError:
                run.record(keys, "rolled back")
            except CommitUnknownError:
                run.record(keys, "unknown")
                run.up.wait(60)
            except (psycopg.Error, pgdecor.Error):  # the server restarting: nothing was committed
                run.record(keys, "failed")
                run.up.wait(60)
            else:
                run.record(keys, "committed")
                committed += len(keys)
    except BaseException as err:
        run.errors.append(err)
        raise


def _consume(run: Run, dsn: str, listeners: list[Any]) -> None:
    try:
        with ticks(dsn) as events:
            listeners.append(events)
            for item in events:
                if run.received(item):
                    return
    except BaseException as err:
        run.errors.append(err)
        raise


def _consume_async(run: Run, dsn: str, listeners: list[Any]) -> None:
    async def main() -> None:
        async with aticks(dsn) as events:
            listeners.append(events)
            async for item in events:
                if run.received(item):
                    return

    try:
        asyncio.run(main())
    except BaseException as err:
        run.errors.append(err)
        raise


def _terminate(dsn: str, pid: int | None) -> None:
    assert pid is not None
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_catalog.pg_terminate_backend(%s)", [pid])


@pytest.mark.slow
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_every_notification_committed_while_listening_arrives_once_in_order_and_gaps_are_reported(
    server: TemporaryServer, is_async: bool, figures: Callable[[str], None]
) -> None:
    """10,000 notifications from 4 writers, the listener's backend terminated and the server restarted: each
    committed while the listener listened is delivered exactly once, in order per writer; each lost is behind a
    `Missed`; none from a transaction that rolled back or failed."""
    run = Run()
    listeners: list[Any] = []
    started = time.monotonic()
    consumer = threading.Thread(target=_consume_async if is_async else _consume, args=(run, server.dsn, listeners))
    consumer.start()
    run.wait(lambda: run.markers() == 1 or bool(run.errors), "the listener listens")
    (events,) = listeners
    with Database(server.dsn, max_size=WRITERS) as db:
        writers = [threading.Thread(target=_writer, args=(run, db, w)) for w in range(WRITERS)]
        for thread in writers:
            thread.start()
        run.wait(lambda: run.committed >= TERMINATE_AT, f"{TERMINATE_AT} notifications are committed")
        _terminate(server.dsn, events.backend_pid)
        run.wait(lambda: run.markers() == 2, "the listener listens again")
        run.wait(lambda: run.committed >= RESTART_AT, f"{RESTART_AT} notifications are committed")
        run.up.clear()
        server.restart()
        run.up.set()
        run.wait(lambda: run.markers() == 3, "the listener listens after the restart")
        for thread in writers:
            thread.join(60)
        assert not run.errors
        with db.session():
            for w in range(WRITERS):
                tick(Tick(w, END))
    consumer.join(60)
    assert not consumer.is_alive()
    assert not run.errors
    elapsed = time.monotonic() - started

    outcomes = run.outcomes
    delivered = [item for item in run.stream if isinstance(item, Tick) and item.seq != END]
    keys = [(t.writer, t.seq) for t in delivered]
    duplicates = len(keys) - len(set(keys))
    out_of_order = sum(
        1 for w in range(WRITERS) for a, b in _pairs([s for (x, s) in keys if x == w]) if b <= a
    )  # fmt: skip
    not_committed = [key for key in keys if outcomes.get(key) not in ("committed", "unknown")]
    lost, unreported = _gaps(run.stream, outcomes)
    counts = {
        name: sum(1 for o in outcomes.values() if o == name)
        for name in ("committed", "rolled back", "failed", "unknown")
    }
    figures(
        f"{'async' if is_async else 'sync'}: {counts['committed']:,} notifications committed by {WRITERS} writers "
        f"({counts['rolled back']:,} sent in transactions rolled back, {counts['failed']} failed, "
        f"{counts['unknown']} unknown), the listener's backend terminated and the server restarted: "
        f"{len(delivered):,} delivered, duplicates {duplicates}, out of order {out_of_order}, from transactions "
        f"that did not commit {len(not_committed)}, lost {lost} across {events.reconnects} reconnects, lost "
        f"without a Missed {unreported}; {elapsed:.1f} s"
    )
    assert counts["committed"] == WRITERS * PER_WRITER
    assert counts["rolled back"] > 0
    assert (duplicates, out_of_order, not_committed, unreported) == (0, 0, [], 0)
    assert events.reconnects >= 2
    assert run.markers() == events.reconnects + 1
    assert events.received == len(delivered) + WRITERS
    assert events.undecodable == 0


def _pairs(seqs: list[int]) -> list[tuple[int, int]]:
    return list(itertools.pairwise(seqs))


def _gaps(stream: list[Tick | Missed], outcomes: dict[tuple[int, int], str]) -> tuple[int, int]:
    """Committed notifications not delivered: how many, and how many of them no `Missed` accounts for (the
    deliveries around it, of the same writer, are between the same two markers)."""
    segment = 0
    #: writer → [(seq, segment)] in the order delivered; the writers began after the first marker.
    seen: dict[int, list[tuple[int, int]]] = {}
    for item in stream:
        if isinstance(item, Missed):
            segment += 1
        else:
            seen.setdefault(item.writer, []).append((item.seq, segment))
    lost = unreported = 0
    for writer, deliveries in seen.items():
        around = [(-1, 1), *deliveries]
        delivered = {seq for seq, _ in deliveries}
        committed = sorted(s for (w, s), o in outcomes.items() if w == writer and o == "committed")
        i = 0
        for seq in committed:
            if seq in delivered:
                continue
            lost += 1
            while around[i + 1][0] < seq:
                i += 1
            before, after = around[i], around[i + 1]
            if before[1] == after[1]:
                unreported += 1
    return lost, unreported


def test_the_checker_finds_what_a_missing_marker_would_hide() -> None:
    """The soak's own check: a notification lost between two deliveries with no `Missed` between them is counted
    as lost without one; lost across a `Missed`, it is not."""
    outcomes = {(0, s): "committed" for s in range(4)}
    reported: list[Tick | Missed] = [
        Missed("soak", "started"),
        Tick(0, 0),
        Missed("soak", "lost"),
        Tick(0, 2),
        Tick(0, 3),
    ]
    hidden: list[Tick | Missed] = [Missed("soak", "started"), Tick(0, 0), Tick(0, 2), Tick(0, 3)]
    assert _gaps(reported, outcomes) == (1, 0)
    assert _gaps(hidden, outcomes) == (1, 1)
    assert _gaps([Missed("soak", "started"), Tick(0, 1), Tick(0, 2), Tick(0, 3)], outcomes) == (1, 1)
