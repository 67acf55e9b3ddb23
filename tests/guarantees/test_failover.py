"""Failover: a service writing and reading through `Database` on a multi-host connection string while its primary
dies and the standby is promoted. Every write the service acknowledged is on the new primary, none twice; the
sessions in flight end with an error and nothing half-committed; new sessions reach the new primary within a
bound; readonly stubs keep working from a ``prefer-standby`` pool meanwhile."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgdecor import CommitUnknownError, Database, Retry, query
from pgdecor.testing import TemporaryServer
from tests.utils.autofailover import Formation

pytestmark = [pytest.mark.slow, pytest.mark.timing]

WRITERS, WRITES = 3, 150
#: The write (counted over all writers) after which the primary dies.
FAIL_AFTER = 120
#: Seconds within which new sessions must reach the new primary.
RECOVERY_BOUND = 15.0


@query("INSERT INTO ledger (writer, n) VALUES (%(writer)s, %(n)s)")
def record(writer: int, n: int) -> None: ...


@query("SELECT count(*) FROM ledger", readonly=True)
def ledger_size() -> int: ...


@dataclass
class Load:
    acknowledged: set[tuple[int, int]] = field(default_factory=set)
    failed: int = 0
    #: Writes whose COMMIT's answer was lost in the crash (`CommitUnknownError`): stored or not, never twice.
    unknown: int = 0
    reads: int = 0
    failed_reads: int = 0
    killed_at: float | None = None
    first_after: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def hosts(*servers: TemporaryServer, **options: str) -> str:
    """One connection string for several servers (libpq tries them in order)."""
    socks = [str(conninfo_to_dict(s.dsn)["host"]) for s in servers]
    return make_conninfo(
        host=",".join(socks), port=",".join("5432" for _ in socks), user="postgres", dbname="postgres", **options
    )


@pytest.fixture
def pair() -> Iterator[tuple[TemporaryServer, TemporaryServer]]:
    """A primary whose commits wait for its standby (synchronous replication: an acknowledged commit is on both),
    and the standby."""
    with TemporaryServer() as primary:
        with psycopg.connect(primary.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE ledger (writer int NOT NULL, n int NOT NULL)")  # no key: duplicates show
        with primary.standby() as standby:
            with psycopg.connect(primary.dsn, autocommit=True) as conn:  # not in the standby's copy of the settings
                conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
                conn.execute("SELECT pg_reload_conf()")
            yield primary, standby


def _writer(db: Database, load: Load, writer: int, kill: Callable[[], None]) -> None:
    for n in range(WRITES):
        started = time.monotonic()
        try:
            db.run(record, writer, n, retry=Retry(retries=5, backoff=0.05, connection_lost=True))
        except psycopg.Error:
            with load.lock:
                load.failed += 1
            continue
        except CommitUnknownError:
            with load.lock:
                load.unknown += 1
            continue
        now = time.monotonic()
        with load.lock:
            load.acknowledged.add((writer, n))
            if load.killed_at is not None and started > load.killed_at and load.first_after is None:
                load.first_after = now  # the first write begun after the crash that was acknowledged
            due = len(load.acknowledged) == FAIL_AFTER
        if due:
            kill()


def _reader(replicas: Database, load: Load, done: threading.Event) -> None:
    while not done.is_set():
        if _read(replicas):
            load.reads += 1
        else:
            load.failed_reads += 1


def _read(replicas: Database) -> bool:
    try:
        with replicas.session():
            ledger_size()
    except psycopg.Error:
        return False
    return True


def test_a_failover_loses_no_acknowledged_write_and_the_service_recovers(
    pair: tuple[TemporaryServer, TemporaryServer], figures: Callable[[str], None]
) -> None:
    """A plain streaming standby, promoted by hand the moment the primary crashes."""
    primary, standby = pair
    # The suite's servers run with synchronous_commit off (fast, as durability does not matter there); a service
    # that must not lose an acknowledged write across a failover commits synchronously.
    durable = "-c synchronous_commit=on"
    writes = hosts(primary, standby, target_session_attrs="read-write", connect_timeout="2", options=durable)
    reads = hosts(standby, primary, target_session_attrs="prefer-standby", connect_timeout="2")

    def kill() -> None:
        """The primary dies (no shutdown checkpoint, connections cut), and the standby is promoted."""
        primary.crash()
        load.killed_at = time.monotonic()
        standby.promote()

    load = Load()
    _serve(writes, reads, load, kill)
    _verify(load, standby.dsn, "plain standby promoted", figures)


def test_a_failover_by_pg_auto_failover_loses_no_acknowledged_write(figures: Callable[[str], None]) -> None:
    """pg_auto_failover's monitor sees the primary die and promotes the secondary itself; the service reaches it
    through the multi-host string ``pg_autoctl show uri`` gives."""
    formation = Formation()
    try:
        formation.start()
        with psycopg.connect(formation.node_dsn("node1"), autocommit=True) as conn:
            conn.execute("CREATE TABLE ledger (writer int NOT NULL, n int NOT NULL)")
        writes = formation.uri(connect_timeout="2")
        reads = formation.uri(connect_timeout="2").replace(
            "target_session_attrs=read-write", "target_session_attrs=prefer-standby"
        )
        load = Load()

        def kill() -> None:
            formation.kill("node1")
            load.killed_at = time.monotonic()

        _serve(writes, reads, load, kill)
        _verify(load, formation.node_dsn("node2"), "pg_auto_failover", figures)
    finally:
        formation.stop()


def _serve(writes: str, reads: str, load: Load, kill: Callable[[], None]) -> None:
    """The service's load: writers through a `Database` on *writes*, a reader through one on *reads*; *kill* is
    called after the `FAIL_AFTER`th acknowledged write."""
    done = threading.Event()
    with Database(writes, max_size=WRITERS, timeout=RECOVERY_BOUND) as db, Database(reads, max_size=1) as replicas:
        threads = [threading.Thread(target=_writer, args=(db, load, w, kill)) for w in range(WRITERS)]
        reader = threading.Thread(target=_reader, args=(replicas, load, done))
        for t in [*threads, reader]:
            t.start()
        for t in threads:
            t.join(timeout=120)
        done.set()
        reader.join(timeout=60)


def _verify(load: Load, new_primary: str, what: str, figures: Callable[[str], None]) -> None:
    """Every acknowledged write on the new primary, once; every write acknowledged or failed; recovery bounded."""
    with psycopg.connect(new_primary) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)  # the new primary
        rows = Counter(conn.execute("SELECT writer, n FROM ledger").fetchall())
    lost = load.acknowledged - set(rows)
    duplicated = [row for row, times in rows.items() if times > 1]
    assert load.killed_at is not None
    assert load.first_after is not None, "no write was acknowledged after the failover"
    recovery = load.first_after - load.killed_at
    figures(
        f"{what}: {len(load.acknowledged)} acknowledged, {len(lost)} lost, {len(duplicated)} duplicated, "
        f"{load.failed} failed cleanly, {load.unknown} of unknown outcome; recovery {recovery:.2f} s; reads from the prefer-standby pool "
        f"{load.reads} ok, {load.failed_reads} failed"
    )
    assert lost == set()
    assert duplicated == []
    assert len(load.acknowledged) + load.failed + load.unknown == WRITERS * WRITES
    assert recovery < RECOVERY_BOUND
    assert load.reads > 0
