"""Fixtures of the tests of the wire (`pgdecor._wire`): the wire switched on with a fresh conversion cache, and what
the wires of both kinds did (the batches they pipelined, the chunks they read, the calls they sent), counted."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgdecor._wire import internals as _internals
from pgdecor._wire import reads as _reads
from pgdecor._wire import reads_async as _reads_async
from pgdecor._wire import wire as _wire
from pgdecor._wire import wire_async as _wire_async
from pgdecor._wire import wire_base as _wire_base


@pytest.fixture
def fresh_switch(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The wire switched on (also where ``PGDECOR_WIRE=off`` switched it off: these tests are of the wire itself),
    with a fresh conversion cache: whatever a test turns off is restored."""
    if _internals.missing is not None:  # pragma: no cover - a psycopg without what the wire uses
        pytest.skip("this psycopg lacks what the wire uses")
    monkeypatch.setattr(_wire.switch, "on", True)
    monkeypatch.setattr(_wire.switch, "reason", None)
    monkeypatch.setattr(_wire_base, "_converted", {})
    return _wire.switch


@pytest.fixture
def wire_batches(monkeypatch: pytest.MonkeyPatch, fresh_switch: Any) -> list[int]:
    """The size of each batch the wire pipelined itself, once read (0 for one whose execution failed, or whose read
    was cut short), for the tests of that path."""
    ran: list[int] = []
    sync, asynchronous = _reads.BatchResults.__exit__, _reads_async.AsyncBatchResults.__aexit__

    def count(read: Any, error: BaseException | None) -> None:
        ran.append(0 if isinstance(error, psycopg.Error) else len(read.results))

    def counted(self: Any, *exc: Any) -> None:
        sent = self._lock is not None
        sync(self, *exc)
        if sent:
            count(self, exc[1])

    async def acounted(self: Any, *exc: Any) -> None:
        sent = self._lock is not None
        await asynchronous(self, *exc)
        if sent:
            count(self, exc[1])

    monkeypatch.setattr(_reads.BatchResults, "__exit__", counted)
    monkeypatch.setattr(_reads_async.AsyncBatchResults, "__aexit__", acounted)
    return ran


@pytest.fixture
def collector_on() -> Iterator[None]:
    """The cyclic garbage collector running (the suite runs with it off), and running still after the test."""
    gc.enable()
    try:
        yield
        assert gc.isenabled()
    finally:
        gc.disable()


@pytest.fixture
def chunked_reads(monkeypatch: pytest.MonkeyPatch, fresh_switch: Any, collector_on: None) -> list[int]:
    """The chunks of each result the wire read as it came (where libpq reads chunks), for the tests of that path;
    with the collector on, which reading in chunks pauses and resumes. A read the wire did not send (psycopg had
    not prepared the statement) has no chunks, and is left out."""
    read: list[int] = []
    reads: list[Any] = []
    sync, asynchronous = _reads.Chunks.__next__, _reads_async.AsyncChunks.__anext__

    def count(chunks: Any, ready: list[Any]) -> list[Any]:
        if not reads or reads[-1] is not chunks:
            reads.append(chunks)
            read.append(0)
        read[-1] += len(ready)
        return ready

    def counted(self: Any) -> Any:
        return count(self, sync(self))

    async def acounted(self: Any) -> Any:
        return count(self, await asynchronous(self))

    monkeypatch.setattr(_reads.Chunks, "__next__", counted)
    monkeypatch.setattr(_reads_async.AsyncChunks, "__anext__", acounted)
    return read


@pytest.fixture
def wire_calls(monkeypatch: pytest.MonkeyPatch, fresh_switch: Any) -> list[str]:
    """The SQL of each call a wire sent (sync or async), for the tests that need to know the wire was taken."""
    sent: list[str] = []
    sync, asynchronous = _wire.Wire.execute, _wire_async.AsyncWire.execute

    def counted(self: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        read = sync(self, sql, *args, **kwargs)
        sent.extend([sql] if read else [])
        return read

    async def acounted(self: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        read = await asynchronous(self, sql, *args, **kwargs)
        sent.extend([sql] if read else [])
        return read

    monkeypatch.setattr(_wire.Wire, "execute", counted)
    monkeypatch.setattr(_wire_async.AsyncWire, "execute", acounted)
    return sent
