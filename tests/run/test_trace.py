# Generated from tests/run/test_trace_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.run.test_trace_async`, generated from it: see there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.trace import SpanKind, StatusCode

from pgdecor import session
from pgdecor._run import trace as _trace
from tests.fix_telemetry import Telemetry
from tests.usercode.userdb import User, add_user, count_users, each_user, get_user

CALLS = 20


def where(users: str) -> tuple[str, str, int]:
    with psycopg.connect(users) as conn:
        return conn.info.dbname, conn.info.host, conn.info.port


def test_every_call_is_one_client_span_with_the_conventions_attributes(users: str, telemetry: Telemetry) -> None:
    """N calls of a @procedure stub give N CLIENT spans named by the query summary, with the attributes the
    database semantic conventions define and the stub's name, and N durations in the histogram."""
    dbname, host, port = where(users)
    with session(users):
        for _ in range(CALLS):
            assert get_user(1) == User(1, "ann", "ann@example.org")
    spans = telemetry.spans()
    assert len(spans) == CALLS
    for span in spans:
        assert span.kind is SpanKind.CLIENT
        assert span.name == "SELECT get_user"
        attributes = dict(span.attributes or {})
        text = attributes.pop("db.query.text")
        assert isinstance(text, str)
        assert text.startswith('SELECT * FROM "get_user"("id" => $1::integer)')
        assert attributes == {
            "db.system.name": "postgresql",
            "db.operation.name": "SELECT",
            "db.query.summary": "SELECT get_user",
            "db.stored_procedure.name": "get_user",
            "code.function.name": "tests.usercode.userdb.get_user",
            "db.namespace": dbname,
            "server.address": host,
            "server.port": port,
        }
    (point,) = telemetry.durations()
    assert point.count == CALLS
    assert point.attributes["db.operation.name"] == "SELECT"


def test_a_query_is_summarised_by_its_command_and_table(users: str, telemetry: Telemetry) -> None:
    """A @query stub's span is named by its command and table; it names no stored procedure."""
    with session(users):
        count_users()
        add_user(40, "dee")
    counted, added = telemetry.spans()
    assert (counted.name, added.name) == ("SELECT users", "INSERT users")
    assert (counted.attributes or {})["db.query.text"] == "SELECT count(*) FROM users"
    assert "db.stored_procedure.name" not in (added.attributes or {})
    assert (added.attributes or {})["db.operation.name"] == "INSERT"


def test_a_failed_call_carries_its_sqlstate(users: str, telemetry: Telemetry) -> None:
    """A call the server refuses ends its span in error, with the SQLSTATE, in the span and in the histogram."""
    with pytest.raises(psycopg.errors.UniqueViolation), session(users):
        add_user(1, "again")
    (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["db.response.status_code"] == "23505"
    assert (span.attributes or {})["error.type"] == "23505"
    (point,) = telemetry.durations()
    assert point.attributes["error.type"] == "23505"


def test_a_batch_is_one_span_with_its_size(users: str, telemetry: Telemetry) -> None:
    """`many()` is one span, which says how many calls it made."""
    with session(users):
        assert get_user.many([(1,), (2,), (99,)]) == [
            User(1, "ann", "ann@example.org"),
            User(2, "bob", None),
            None,
        ]
    (span,) = telemetry.spans()
    assert (span.attributes or {})["db.operation.batch.size"] == 3
    assert span.name == "SELECT get_user"


def test_a_streams_span_ends_when_the_stream_does(users: str, telemetry: Telemetry) -> None:
    """The span is still open while rows are read, and ends when the stream is exhausted, closed, or ended with
    its session."""
    with session(users):
        rows = each_user()
        assert next(rows).id == 1
        assert telemetry.spans() == []
        assert [u.id for u in rows] == [2, 3]
        assert len(telemetry.spans()) == 1
        next(each_user())  # left open: its session ends it
    assert len(telemetry.spans()) == 2
    with session(users):
        stream: Any = each_user()  # a stream can be closed, which its annotation does not declare
        assert next(stream).id == 1
        assert len(telemetry.spans()) == 2
        stream.close()
        assert len(telemetry.spans()) == 3
    assert telemetry.spans()[-1].name == "SELECT users"


def test_parameter_values_are_recorded_only_when_asked(
    users: str, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call's argument values are in its span only once parameters are asked for."""
    with session(users):
        get_user(1)
        monkeypatch.setattr(_trace.settings, "parameters", True)
        get_user(2)
    quiet, told = telemetry.spans()
    assert not any(k.startswith("db.query.parameter.") for k in quiet.attributes or {})
    assert (told.attributes or {})["db.query.parameter.id"] == 2


@pytest.fixture
def psycopg_instrumented(telemetry: Telemetry) -> Iterator[None]:
    """psycopg's own OpenTelemetry instrumentation, on the same provider, for connections opened meanwhile."""
    instrumentor = PsycopgInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, skip_dep_check=True)
    try:
        yield
    finally:
        instrumentor.uninstrument()


def test_with_psycopgs_instrumentation_pgdecors_span_is_the_parent(
    users: str, telemetry: Telemetry, psycopg_instrumented: None
) -> None:
    """Both instrumentations on: every call is one pgdecor span, and the statement psycopg's instrumentation sees
    for it is its child (the lean path steps aside for such connections), so the trace is whole."""
    with session(users):
        for _ in range(CALLS):
            assert get_user(1) == User(1, "ann", "ann@example.org")
    ours = telemetry.spans()
    theirs = [s for s in telemetry.spans(ours=False) if "get_user" in s.name or "get_user" in str(s.attributes)]
    assert len(ours) == CALLS
    assert len(theirs) == CALLS
    parents = {s.context.span_id for s in ours if s.context is not None}
    assert all(s.parent is not None and s.parent.span_id in parents for s in theirs)


def test_psycopgs_instrumentation_alone_sees_every_call(
    users: str, telemetry: Telemetry, psycopg_instrumented: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pgdecor's spans off, psycopg's on: 20 calls are 20 spans (no call slips past on the lean path)."""
    monkeypatch.setattr(_trace.settings, "on", False)
    with session(users):
        for _ in range(CALLS):
            get_user(1)
    assert telemetry.spans() == []
    theirs = [s for s in telemetry.spans(ours=False) if "get_user" in str(s.attributes)]
    assert len(theirs) == CALLS
