"""A psycopg whose privates have changed (simulated here, one at a time: gone, another arity, another shape, an
exception of its own) never makes a call wrong or raise: every call returns its right value, first and later ones,
the lean path turns itself off with one WARNING naming what changed, and a statement already sent is never sent
again. The server stays real; only what pgdecor finds of psycopg is changed."""

from __future__ import annotations

import asyncio
import enum
import logging
import operator
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import psycopg
import pytest

from pgdecor import session
from pgdecor._wire import guard as _wire_guard
from pgdecor._wire import internals as _internals
from pgdecor._wire import wire_base as _wire_base
from tests.usercode.userdb import User, add_user, aget_user, count_users, get_user

ANN, BOB = User(1, "ann", "ann@example.org"), User(2, "bob", None)


@pytest.fixture
def changed(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """What changes psycopg (or what pgdecor found of it) for one test: the wire switched on first, psycopg's
    privates looked up again after."""
    if _internals.missing is not None:  # pragma: no cover - a psycopg without what the wire uses
        pytest.skip("this psycopg lacks what the wire uses")
    monkeypatch.setattr(_wire_guard.switch, "on", True)
    monkeypatch.setattr(_wire_guard.switch, "reason", None)
    monkeypatch.setattr(_wire_base, "_converted", {})
    with pytest.MonkeyPatch.context() as changes:
        yield changes
    _wire_guard.look_up()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "pgdecor"]


def _without(module: ModuleType, name: str) -> ModuleType:
    """*module* as a psycopg that no longer has *name* would have it (psycopg's own code keeps the real one)."""
    other = ModuleType(module.__name__)
    other.__dict__.update({k: v for k, v in vars(module).items() if k != name})
    return other


def _raises(*_: Any) -> Any:
    msg = "a changed psycopg"
    raise RuntimeError(msg)


def _from_pgdecor() -> bool:
    """Whether psycopg's method is being called by pgdecor (rather than by psycopg itself)."""
    return bool(sys._getframe(2).f_globals.get("__name__", "").startswith("pgdecor."))


def _calls_are_right(users: str) -> None:
    with psycopg.connect(users) as conn, session(conn):
        assert [get_user(1) for _ in range(4)] == [ANN] * 4
        assert [get_user.many([(1,), (2,), (99,)]) for _ in range(3)] == [[ANN, BOB, None]] * 3
        assert [get_user(2) for _ in range(2)] == [BOB] * 2


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("_queries", "_query2pg"),
        ("waiting", "Wait"),
        ("_preparing", "Prepare"),
        ("_preparing", "PrepareManager"),
    ],
)
def test_a_psycopg_without_a_private_makes_every_call_through_cursors_with_one_warning(
    users: str, changed: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, module: str, name: str
) -> None:
    """A private gone (renamed) in this psycopg: found at import, wires off with one WARNING naming it, every call
    right."""
    changed.setattr(psycopg, module, _without(getattr(psycopg, module), name))
    with caplog.at_level(logging.WARNING, logger="pgdecor"):
        _wire_guard.look_up()
        _calls_are_right(users)
    (warning,) = _warnings(caplog)
    assert f"has no psycopg.{module}.{name}" in warning
    assert _wire_guard.switch.on is False


def test_a_psycopg_whose_connection_has_no_wait_makes_every_call_through_cursors(
    users: str, changed: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``Connection.wait`` gone: found at import, named in the one WARNING."""
    changed.setattr(psycopg, "Connection", type("Connection", (psycopg.Connection,), {"wait": None}))
    with caplog.at_level(logging.WARNING, logger="pgdecor"):
        _wire_guard.look_up()
        _calls_are_right(users)
    (warning,) = _warnings(caplog)
    assert "has no psycopg.Connection.wait" in warning


@pytest.mark.parametrize("read", _internals.PIPELINE_READS)
def test_a_psycopg_whose_pipelines_read_otherwise_sends_a_sessions_begin_itself(
    users: str, changed: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, read: str
) -> None:
    """A read of psycopg's pipelines gone (renamed), which `unlink` would make leave no cycle: no pipeline of
    psycopg's carries a session's BEGIN (psycopg sends it before the first statement through a cursor), the
    session's statements are one transaction as ever, and wires stay as they were, without a WARNING."""
    changed.setattr(psycopg, "Pipeline", type("Pipeline", (psycopg.Pipeline,), {read: None}))
    changed.setattr(psycopg.Connection, "pipeline", _raises)
    changed.setattr(_wire_guard.switch, "on", False)  # every call through a cursor
    with caplog.at_level(logging.WARNING, logger="pgdecor"):
        _wire_guard.look_up()
        assert not _internals.unlinks()
        with psycopg.connect(users, autocommit=True) as conn:
            with session(conn):
                before = count_users()
            with pytest.raises(ZeroDivisionError), session(conn):
                add_user(50, "user50")
                assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
                assert get_user(50) == User(50, "user50", None)
                1 / 0  # noqa: B018 - the session's block raising: its transaction rolled back
            with session(conn):
                assert count_users() == before
    assert _warnings(caplog) == []


def _no_wait(_: Any) -> Any:
    return _raises


def _two_arguments(conn: Any) -> Any:
    return lambda gen, _deadline: conn.wait(gen)


def _three(query: bytes, encoding: str) -> Any:
    return _real_query2pg(query, encoding)[:3]


def _three_args(query: bytes, encoding: str, style: str) -> Any:
    return _real_query2pg(query, encoding)


def _text(query: bytes, encoding: str) -> Any:
    converted, *rest = _real_query2pg(query, encoding)
    return (converted.decode(), *rest)


def _with_its_time(conn: Any) -> Any:
    """A wait that gives what the generator it ran returned, and the time it took."""
    return lambda gen: (conn.wait(gen), 0.001)


_real_query2pg = _internals.query2pg


#: What pgdecor finds of a changed psycopg: (what, replacement, the name the WARNING gives).
CHANGES: list[tuple[str, Any, str]] = [
    ("query2pg", _three, "_query2pg: ValueError"),
    ("query2pg", _three_args, "_query2pg: TypeError"),
    ("query2pg", _text, "_query2pg: TypeError"),
    ("query2pg", _raises, "_query2pg: RuntimeError"),
    ("wait", _two_arguments, "psycopg.Connection.wait: TypeError"),
    ("wait", _no_wait, "psycopg.Connection.wait: RuntimeError"),
    ("wait", _with_its_time, "psycopg.Connection.wait: TypeError"),
    ("wait", operator.attrgetter("wait_for"), "psycopg.Connection: AttributeError"),
    ("lock", operator.attrgetter("_lock"), "psycopg.Connection: AttributeError"),
    ("prepare_manager", operator.attrgetter("_prepare_manager"), "psycopg.Connection: AttributeError"),
    ("prepared_names", operator.attrgetter("_statements"), "PrepareManager: AttributeError"),
    ("prepared_names", lambda m: {k: v.decode() for k, v in m._names.items()}, "PrepareManager._names: TypeError"),
    ("to_flush", operator.attrgetter("_to_deallocate"), "PrepareManager: AttributeError"),
    ("prepare_threshold", _raises, "PrepareManager: RuntimeError"),
]


@pytest.mark.parametrize(("what", "replacement", "named"), CHANGES, ids=[f"{c[0]}-{c[2]}" for c in CHANGES])
def test_a_changed_private_never_makes_a_call_wrong_or_raise(  # noqa: PLR0917 - fixtures and parameters
    users: str,
    changed: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    what: str,
    replacement: Callable[..., Any],
    named: str,
) -> None:
    """A private of another arity, another shape, or raising: the first call and the later ones, single and
    batched, are right; wires are off after one WARNING naming it."""
    changed.setattr(_internals, what, replacement)
    with caplog.at_level(logging.WARNING, logger="pgdecor"):
        _calls_are_right(users)
    (warning,) = _warnings(caplog)
    assert "cursors from now on" in warning
    assert named in warning
    assert _wire_guard.switch.on is False


def test_async_calls_are_right_on_a_changed_private_too(
    users: str, changed: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The async wire falls back the same way: ``_query2pg`` giving three values, every call right, one WARNING."""
    changed.setattr(_internals, "query2pg", _three)

    async def scenario() -> list[User | None]:
        async with await psycopg.AsyncConnection.connect(users) as conn, session(conn):
            return [await aget_user(1) for _ in range(4)]

    with caplog.at_level(logging.WARNING, logger="pgdecor"):
        assert asyncio.run(scenario()) == [ANN] * 4
    (warning,) = _warnings(caplog)
    assert "_query2pg: ValueError" in warning


def test_the_prepare_managers_methods_answering_otherwise_never_make_a_call_wrong(
    users: str, changed: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """psycopg's prepare manager answering pgdecor in another shape (``get`` with three values, simulated for
    pgdecor's calls alone, psycopg's own answered as before) or raising (``maybe_add_to_cache``): right results,
    one WARNING."""
    manager = _internals.PrepareManager
    real_get, real_add = manager.get, manager.maybe_add_to_cache

    def get(self: Any, query: Any, prepare: Any = None) -> Any:
        answer = real_get(self, query, prepare)
        return (*answer, "v2") if _from_pgdecor() else answer

    def maybe_add_to_cache(self: Any, query: Any, prep: Any, name: bytes) -> Any:
        if _from_pgdecor():
            _raises()
        return real_add(self, query, prep, name)

    changed.setattr(manager, "get", get)
    changed.setattr(manager, "maybe_add_to_cache", maybe_add_to_cache)
    changed.setattr(_internals, "LRU_IS_A_MOVE", False)
    with caplog.at_level(logging.WARNING, logger="pgdecor"):
        _calls_are_right(users)
    (warning,) = _warnings(caplog)
    assert "psycopg._preparing.PrepareManager: " in warning


class _Ready(enum.IntFlag):
    """What a changed psycopg's wait might say is ready: flags whose values are no longer psycopg's."""

    X = 1
    Y = 2
    Z = 4


def _ready_as_none_or_a_flag(conn: Any) -> Any:
    """A wait that tells the generators it runs what became ready in another form: None for nothing, and a flag of
    its own for something."""

    def wait(gen: Any) -> Any:
        def told() -> Any:
            asked = next(gen)
            for _ in range(1000):  # a reader that never reads what came would ask for ever
                ready = yield asked
                try:
                    asked = gen.send(_Ready.Z if ready else None)
                except StopIteration as done:
                    return done.value
            msg = "the generator never read what came"
            raise AssertionError(msg)

        return conn.wait(told())

    return wait


def test_a_wait_that_says_what_is_ready_in_another_form_still_reads_every_result(
    users: str, changed: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The wire's generators read the socket whenever psycopg's wait says anything is ready, whatever the form, and
    look again when it says nothing: single calls and batches right, wires still on, no WARNING."""
    changed.setattr(_internals, "wait", _ready_as_none_or_a_flag)
    with caplog.at_level(logging.WARNING, logger="pgdecor"):
        _calls_are_right(users)
    assert _warnings(caplog) == []
    assert _wire_guard.switch.on is True


def test_a_private_that_starts_failing_after_the_wire_proved_itself_never_sends_a_statement_twice(
    users: str, changed: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """psycopg's wait raising once statements went through the wire already: the statement sent is read with
    libpq's public calls, so each write happens exactly once, each read is right, the batch too."""
    with caplog.at_level(logging.WARNING, logger="pgdecor"), psycopg.connect(users) as conn:
        with session(conn):
            for n in range(10, 14):
                add_user(n, f"user{n}")
            assert conn in _wire_guard._tested  # the wire has carried calls
            assert _warnings(caplog) == []
            changed.setattr(_internals, "wait", _no_wait)
            for n in range(14, 17):
                add_user(n, f"user{n}")
            assert [get_user(1) for _ in range(2)] == [ANN] * 2
        assert _wire_guard.switch.on is False
        with session(conn):
            assert count_users() == 10
            assert get_user.many([(1,), (16,)]) == [ANN, User(16, "user16", None)]
    (warning,) = _warnings(caplog)
    assert "RuntimeError" in warning


def test_a_batch_whose_wait_fails_half_way_is_read_to_its_end(
    users: str, changed: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """psycopg's wait failing after it drove the wire's own batch reader part of the way: the reader is driven to
    its end with libpq's public calls; every execution of the batch happened once, every result right."""

    def half_way(conn: Any) -> Any:
        def wait(gen: Any) -> Any:
            next(gen)
            _raises()

        return wait

    with caplog.at_level(logging.WARNING, logger="pgdecor"), psycopg.connect(users) as conn:
        with session(conn):
            add_user.many([(30, "a"), (31, "b")])
            add_user.many([(32, "c"), (33, "d")])  # prepared now: through the wire
            assert conn in _wire_guard._tested
            changed.setattr(_internals, "wait", half_way)
            add_user.many([(34, "e"), (35, "f")])
        with session(conn):
            assert count_users() == 9
    (warning,) = _warnings(caplog)
    assert "psycopg.Connection.wait: RuntimeError" in warning


def test_a_result_a_changed_psycopg_lost_closes_the_connection_and_nothing_is_sent_twice(
    users: str, changed: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """psycopg's wait running the wire's reading of a statement's result to its end, then answering in another
    shape, once the wire proved itself: the result is gone, so the call raises as on a broken connection
    (psycopg's OperationalError), the connection is closed, and the session's writes are rolled back by the
    server: never sent again."""
    with psycopg.connect(users) as conn:
        with pytest.raises(psycopg.OperationalError, match="whether the statement ran is unknown"), session(conn):
            for n in range(40, 43):
                add_user(n, f"user{n}")
            assert conn in _wire_guard._tested
            changed.setattr(_internals, "wait", _with_its_time)
            add_user(43, "user43")
        assert conn.closed
    with psycopg.connect(users) as other, session(other):
        assert count_users() == 3
    (warning, *_) = _warnings(caplog)
    assert "psycopg.Connection.wait: TypeError" in warning
