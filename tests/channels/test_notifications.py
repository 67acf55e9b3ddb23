# Generated from tests/channels/test_notifications_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.channels.test_notifications_async`, generated from it: see there."""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, TypedDict, Union

import psycopg
import pydantic
import pytest
from opentelemetry.trace import SpanKind
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from pgdecor import (
    ArgumentError,
    Database,
    Listener,
    Missed,
    PayloadError,
    SignatureError,
    listen,
    notify,
    session,
)
from tests.fix_telemetry import Telemetry
from tests.utils.pgbouncer import pgbouncer


class Status(enum.Enum):
    NEW = "new"
    PAID = "paid"


@dataclass(frozen=True)
class OrderPlaced:
    id: int
    total: Decimal
    placed: dt.date
    status: Status
    tags: list[str] = field(default_factory=list)
    note: str | None = None


class OrderDict(TypedDict):
    id: int
    total: float


class Dated(TypedDict):
    on: dt.date


class Stamp(NamedTuple):
    id: int
    at: dt.datetime


class Priced(pydantic.BaseModel):
    id: int
    name: str
    price: float


@dataclass(frozen=True)
class Tree:
    name: str
    children: list[Tree]


ORDER = OrderPlaced(7, Decimal("19.90"), dt.date(2024, 5, 1), Status.PAID, ["gift"], "ring twice")


def channel() -> str:
    """A channel of the test's own: notifications are seen by every listener of a database."""
    return f"test_{uuid.uuid4().hex[:12]}"


def sender(name: str, payload: Any) -> Callable[..., Any]:
    """A `@notify` stub on *name* whose payload is annotated *payload*."""

    def send(event: Any) -> None: ...

    send.__annotations__ = {"event": payload, "return": None}
    return notify(name)(send)


def listener(name: str, payload: Any, **options: Any) -> Callable[[str], Any]:
    """A `@listen` stub on *name* yielding *payload* (and `Missed`)."""

    def heard(source: str) -> Any: ...

    heard.__annotations__ = {"source": str, "return": Iterator[Union[payload, Missed]]}  # noqa: UP007 - a runtime union
    return listen(name, **options)(heard)


def raw_notify(dsn: str, name: str, *payloads: str) -> None:
    """Send *payloads* on *name* without pgdecor, in one committed transaction."""
    with psycopg.connect(dsn) as conn:
        for text in payloads:
            conn.execute("SELECT pg_catalog.pg_notify(%s, %s)", [name, text])


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Wait until *condition* holds (observed state), failing after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.01)


def backend_exists(admin: psycopg.Connection[Any], pid: int) -> bool:
    return bool(admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0])  # type: ignore[index]


# -- sending and receiving ---------------------------------------------------------------------------------------


def test_a_notification_is_delivered_at_commit_and_never_after_a_rollback(pg_server_dsn: str) -> None:
    """A notification sent in a session arrives when it commits, not before, and never if it rolls back."""
    name = channel()
    order_placed = sender(name, OrderPlaced)
    orders = listener(name, OrderPlaced)
    with orders(pg_server_dsn) as events:
        assert isinstance(events, Listener)
        assert next(events) == Missed(name, "started")
        with contextlib.suppress(LookupError), session(pg_server_dsn):
            order_placed(OrderPlaced(1, Decimal(1), dt.date(2024, 1, 1), Status.NEW))
            raise LookupError
        with session(pg_server_dsn):
            order_placed(ORDER)
            # sent later but committed first, so delivered first: in the order transactions commit
            raw_notify(pg_server_dsn, name, '{"id": 8, "total": 1, "placed": "2024-01-02", "status": "new"}')
        assert next(events) == OrderPlaced(8, Decimal(1), dt.date(2024, 1, 2), Status.NEW)
        assert next(events) == ORDER
        assert (events.received, events.undecodable, events.reconnects) == (2, 0, 0)


CASES = [
    pytest.param(str, 'héllo {"not": "json"} ✓', id="str"),
    pytest.param(OrderPlaced, ORDER, id="dataclass"),
    pytest.param(OrderPlaced | None, None, id="optional"),
    pytest.param(OrderDict, OrderDict(id=1, total=2.5), id="typeddict"),
    pytest.param(Stamp, Stamp(3, dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)), id="namedtuple"),
    pytest.param(Priced, Priced(id=4, name="pen", price=1.25), id="pydantic"),
    pytest.param(list[int], [1, 2, 3], id="list"),
    pytest.param(dict[str, float], {"a": 1.5, "b": -2.0}, id="dict"),
    pytest.param(Status, Status.PAID, id="enum"),
    pytest.param(Tree, Tree("a", [Tree("b", []), Tree("c", [Tree("d", [])])]), id="recursive"),
]


@pytest.mark.parametrize(("payload", "value"), CASES)
def test_payloads_arrive_as_themselves(pg_server_dsn: str, payload: Any, value: Any) -> None:
    """Each kind of payload is sent and decoded back into an equal value of the annotated type."""
    name = channel()
    send = sender(name, payload)
    with listener(name, payload)(pg_server_dsn) as events:
        with session(pg_server_dsn):
            send(value)
        missed, got = next(events), next(events)
    assert (missed, got) == (Missed(name, "started"), value)
    assert type(got) is type(value)


def test_a_payload_of_the_longest_length_postgresql_takes_is_sent(pg_server_dsn: str) -> None:
    """7,999 bytes (in UTF-8, not characters) are sent; 8,000 are refused before sending."""
    name = channel()
    send = sender(name, str)
    longest = "é" * 3999 + "x"
    assert len(longest.encode()) == 7999
    with listener(name, str)(pg_server_dsn) as events:
        with session(pg_server_dsn):
            with pytest.raises(ArgumentError, match="8,000 bytes; PostgreSQL takes at most 7,999"):
                send("é" * 4000)
            send(longest)
        assert [next(events), next(events)] == [Missed(name, "started"), longest]


REFUSED = [
    pytest.param(str, "x" * 8000, "8,000 bytes; PostgreSQL takes at most 7,999", id="too-long"),
    pytest.param(
        dict[str, Any], {"text": "x" * 7990}, "bytes as JSON; PostgreSQL takes at most", id="too-long-as-json"
    ),
    pytest.param(str, "a\x00b", "NUL character", id="nul"),
    pytest.param(str, 42, "must be a str, not int", id="not-a-str"),
    pytest.param(dict[str, Any], {"raw": b"\x00\x01"}, "at ['raw'], which JSON has no type for", id="bytes"),
    pytest.param(OrderPlaced, ORDER.__class__(1, Decimal("NaN"), ORDER.placed, ORDER.status), "decimal NaN", id="nan"),
    pytest.param(
        OrderPlaced, ORDER.__class__(1, Decimal("-Infinity"), ORDER.placed, ORDER.status), "-Infinity", id="infinity"
    ),
    pytest.param(dict[str, float], {"x": float("inf")}, "JSON (and jsonb) cannot represent", id="float-inf"),
    pytest.param(
        dict[str, Any], {"wait": dt.timedelta(seconds=3)}, "at ['wait'], which JSON has no type for", id="timedelta"
    ),
    pytest.param(dict[str, Any], {"ids": {1, 2}}, "type set at ['ids']", id="set"),
    pytest.param(OrderPlaced, {"id": "seven"}, "not decode as", id="wrong-shape"),
    pytest.param(list[int], [1, True], "a boolean at [1] where an integer is expected", id="wrong-item"),
    pytest.param(Priced, Priced(id=1, name="x", price=float("nan")), "read back as", id="pydantic-nan"),
]


@pytest.mark.parametrize(("payload", "value", "message"), REFUSED)
def test_a_payload_that_would_not_arrive_as_itself_is_refused_before_sending(
    pg_server_dsn: str, payload: Any, value: Any, message: str
) -> None:
    """Too long, or not exactly JSON: `ArgumentError` naming the stub, nothing sent, the transaction unharmed."""
    name = channel()
    send, mark = sender(name, payload), sender(name, str)
    with listener(name, str)(pg_server_dsn) as events:
        with session(pg_server_dsn):
            with pytest.raises(ArgumentError) as raised:
                send(value)
            mark("after")  # had the payload reached the server, this would fail in an aborted transaction
        assert [next(events), next(events)] == [Missed(name, "started"), "after"]
    assert str(raised.value).startswith(f"{send.__module__}.{send.__qualname__}: the payload ")
    assert message in str(raised.value)


def test_channel_names_are_taken_as_written(pg_server_dsn: str) -> None:
    """A channel name of 63 bytes, with capitals, spaces and quotes, is the one both sides use (quoted)."""
    name = 'Ünï "Cöde" ' + "x" * (63 - len('Ünï "Cöde" '.encode()))
    assert len(name.encode()) == 63
    send = sender(name, int)
    with listener(name, int)(pg_server_dsn) as events:
        with session(pg_server_dsn):
            send(1)
        assert [next(events), next(events)] == [Missed(name, "started"), 1]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: notify("x" * 64), "is 64 bytes long; PostgreSQL's names are at most 63 bytes"),
        (lambda: listen("é" * 32), "is 64 bytes long"),
        (lambda: notify(""), "the channel's name is empty"),
        (lambda: listen("a\x00b"), "NUL character"),
        (lambda: notify(42), "takes the channel's name as a string, not int"),  # type: ignore[arg-type]
        (lambda: listen("c", check_every=0), "check_every is a number of seconds above 0"),
        (lambda: listen("c", undecodable="ignore"), "undecodable is 'skip' or 'raise'"),  # type: ignore[arg-type]
        (lambda: sender("c", bytes), "is bytes, which a notification cannot carry as JSON exactly"),
        (lambda: sender("c", dict[int, str]), "JSON's keys are strings"),
        (lambda: sender("c", tuple[int, int]), "cannot carry as JSON exactly"),
        (lambda: sender("c", dt.timedelta), "cannot carry as JSON exactly"),
        (lambda: listener("c", set[int]), "cannot carry as JSON exactly"),
        (lambda: listener("c", Union[dt.date, int]), "JSON cannot tell its members apart"),  # noqa: UP007
        (
            lambda: sender("c", Dated),
            "field Dated.on is datetime.date, which a notification cannot carry as JSON exactly: a TypedDict",
        ),
        (lambda: sender("c", list[Priced]), "a pydantic model travels as the payload itself"),
        (lambda: notify("c")(lambda *_: None), "takes one parameter, the payload"),
        (lambda: listen("c")(lambda: iter([Missed("c", "")])), "takes one parameter, where to listen"),
    ],
)
def test_stubs_that_cannot_work_are_refused_when_decorated(make: Callable[[], Any], message: str) -> None:
    """A bad channel name, option or payload type is a `SignatureError` at import, saying what to do."""
    with pytest.raises(SignatureError) as raised:
        make()
    assert message in str(raised.value)


def test_listener_stubs_must_say_what_they_yield() -> None:
    """A listener's annotation must include `Missed`, and a listener stub is a plain `def`; a @notify stub returns
    None."""

    def heard(db: str) -> Iterator[int]:
        raise NotImplementedError

    with pytest.raises(SignatureError, match=r"annotate `-> Iterator\[int \| Missed\]` and handle it"):
        listen("c")(heard)

    def generated(db: str) -> Iterator[int | Missed]:
        yield Missed(db, "")

    with pytest.raises(SignatureError, match="plain `def`"):
        listen("c")(generated)

    def told(n: int) -> int:
        raise NotImplementedError

    with pytest.raises(SignatureError, match="returns None"):
        notify("c")(told)  # type: ignore[arg-type]


# -- decoding ------------------------------------------------------------------------------------------------------


def test_undecodable_payloads_are_skipped_with_a_warning_and_counted(
    pg_server_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Payloads that are not JSON, or not of the listener's shape, are skipped with a WARNING and counted."""
    name = channel()
    caplog.set_level(logging.WARNING, logger="pgdecor")
    with listener(name, OrderDict)(pg_server_dsn) as events:
        raw_notify(
            pg_server_dsn, name, "not json", '{"id": "one", "total": 1}', '{"total": 1}', '{"id": 2, "total": 3}'
        )
        assert [next(events), next(events)] == [Missed(name, "started"), {"id": 2, "total": 3}]
        assert (events.received, events.undecodable) == (1, 3)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert "does not decode as" in warnings[0]
    assert "its payload was 'not json'" in warnings[0]
    assert "a string at .id where an integer is expected" in warnings[1]
    assert "has no 'id', which" in warnings[2]
    assert "skipped (3 so far)" in warnings[2]


def test_undecodable_payloads_raise_with_their_text_when_asked(pg_server_dsn: str) -> None:
    """With ``undecodable="raise"``, a `PayloadError` carries the channel and the raw text, and the stream goes on."""
    name = channel()
    with listener(name, OrderPlaced, undecodable="raise")(pg_server_dsn) as events:
        assert next(events) == Missed(name, "started")
        bad = ["[1, 2", NaN_JSON, '{"id": 1}', BAD_DECIMAL, BAD_DATE]
        raw_notify(pg_server_dsn, name, *bad)
        for text in bad:
            with pytest.raises(PayloadError) as raised:
                next(events)
            assert (raised.value.channel, raised.value.payload) == (name, text)
        raw_notify(pg_server_dsn, name, '{"id": 2, "total": "2.50", "placed": "2024-02-29", "status": "new"}')
        assert next(events) == OrderPlaced(2, Decimal("2.50"), dt.date(2024, 2, 29), Status.NEW)
        assert (events.received, events.undecodable) == (1, 5)


NaN_JSON = '{"id": NaN}'
BAD_DECIMAL = '{"id": 1, "total": "1,50", "placed": "2024-01-01", "status": "new"}'
BAD_DATE = '{"id": 1, "total": "1.50", "placed": "2024-02-30", "status": "new"}'


# -- the connection ------------------------------------------------------------------------------------------------


def test_a_listener_behind_pgbouncer_is_refused(pg_server_dsn: str) -> None:
    """Through PgBouncer in transaction mode, a listener refuses to listen, saying to use the server's address."""
    name = channel()
    with pgbouncer(pg_server_dsn) as bounced, pytest.raises(ArgumentError) as raised, listener(name, int)(bounced):
        pass
    assert "reaches the server through a connection pooler" in str(raised.value)
    assert "Give the listener the server's own address" in str(raised.value)


def test_a_listener_takes_a_database_or_a_conninfo_never_a_pooled_connection(pg_server_dsn: str) -> None:
    """A `Database` gives its conninfo (and connection options); a pool or a connection is refused."""
    name = channel()
    send = sender(name, int)
    with (
        Database(pg_server_dsn, application_name="from-db", row_factory=dict_row) as db,
        listener(name, int)(db) as events,  # type: ignore[arg-type]
    ):
        with db.session():
            send(1)
        assert [next(events), next(events)] == [Missed(name, "started"), 1]
        with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
            row = admin.execute("SELECT application_name FROM pg_stat_activity WHERE pid = %s", [events.backend_pid])
            assert row.fetchone() == ("from-db",)
    with ConnectionPool(pg_server_dsn, open=False) as pool, pytest.raises(ArgumentError, match="a pooled or borrowed"):
        listener(name, int)(pool)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="not a connection string"):
        listener(name, int)("host='unterminated")


def test_the_first_connection_error_is_raised_with_where(tmp_path: Path) -> None:
    """No server there: the first attempt fails at once, naming the stub, the channel and the address."""
    with pytest.raises(psycopg.OperationalError) as raised, listener("c", int)(f"host={tmp_path} port=1"):
        pass
    notes = "\n".join(getattr(raised.value, "__notes__", []))
    assert "could not listen on 'c' at " in notes
    assert str(tmp_path) in notes


@pytest.mark.slow
@pytest.mark.timing
def test_connecting_to_a_server_that_never_answers_gives_up() -> None:
    """A server that accepts the connection but never answers (a silent network) fails the attempt to connect
    after ``check_timeout`` (libpq's least, 2 s), rather than holding the listener for as long as TCP waits."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody ever answers
        port = silent.getsockname()[1]
        failed: list[BaseException] = []

        def attempt() -> None:
            try:
                with listener("c", int, check_timeout=1)(f"host=127.0.0.1 port={port} user=nobody dbname=none"):
                    pass
            except psycopg.OperationalError as err:
                failed.append(err)

        def run() -> None:  # in a thread of its own, which the test gives up waiting for if it hangs
            attempt()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(30)
    assert not thread.is_alive()
    assert "timeout expired" in str(failed[0])


@pytest.mark.slow
@pytest.mark.timing
def test_a_server_that_stops_answering_is_found_and_left(pg_server_dsn: str) -> None:
    """A backend that stops answering (SIGSTOP) fails the liveness check: the listener says Missed and listens anew."""
    name = channel()
    send = sender(name, int)
    stub = listener(name, int, check_every=0.2, check_timeout=0.5)
    stopped: list[int] = []

    def stop(pid: int) -> None:
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)

    try:
        with stub(pg_server_dsn) as events:
            assert next(events) == Missed(name, "started")
            stop(events.backend_pid)
            missed = next(events)
            with session(pg_server_dsn):
                send(5)
            value, reconnects = next(events), events.reconnects
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert missed == Missed(name, "the server did not answer a liveness check (SELECT 1) within 0.5 s")
    assert (value, reconnects) == (5, 1)


# -- check and tracing --------------------------------------------------------------------------------------------


def test_notifying_and_listening_are_traced(pg_server_dsn: str, telemetry: Telemetry) -> None:
    """Sending is a CLIENT span named after the stub's call of pg_notify; each subscription a ``LISTEN`` span."""
    name = channel()
    send = sender(name, int)
    with listener(name, int)(pg_server_dsn) as events:
        with session(pg_server_dsn):
            send(1)
        assert [next(events), next(events)] == [Missed(name, "started"), 1]
    spans = {s.name: s for s in telemetry.spans()}
    listened = spans[f"LISTEN {name}"]
    assert listened.kind is SpanKind.CLIENT
    assert listened.attributes is not None
    assert listened.attributes["db.query.text"] == f'LISTEN "{name}"'
    assert str(listened.attributes["code.function.name"]).endswith("listener.<locals>.heard")
    assert "server.address" in listened.attributes
    (sent,) = [s for s in spans.values() if s.attributes and "pg_notify" in str(s.attributes.get("db.query.text"))]
    assert sent.attributes is not None
    assert str(sent.attributes["code.function.name"]).endswith("sender.<locals>.send")
