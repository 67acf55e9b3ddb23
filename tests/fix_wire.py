"""Fixtures of the tests of the wire (`pgdecor._wire`): the wire switched on with a fresh conversion cache, and what
the wires of both kinds did (the batches they pipelined, the chunks they read, the calls they sent), counted."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgdecor._wire import internals as _internals
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
    """The size of each batch the wire pipelined itself (0 for one whose execution failed), for the tests of that
    path."""
    ran: list[int] = []
    sync, asynchronous = _wire.Wire.execute_many, _wire_async.AsyncWire.execute_many

    def counted(self: Any, sql: str, paramsets: Any, binary: bool, each: Any = None) -> Any:
        try:
            read = sync(self, sql, paramsets, binary, each)
        except psycopg.Error:
            ran.append(0)
            raise
        ran.extend([] if read is None else [len(read[0])])
        return read

    async def acounted(self: Any, sql: str, paramsets: Any, binary: bool, each: Any = None) -> Any:
        try:
            read = await asynchronous(self, sql, paramsets, binary, each)
        except psycopg.Error:
            ran.append(0)
            raise
        ran.extend([] if read is None else [len(read[0])])
        return read

    monkeypatch.setattr(_wire.Wire, "execute_many", counted)
    monkeypatch.setattr(_wire_async.AsyncWire, "execute_many", acounted)
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
    sync, asynchronous = _wire.Wire.execute_chunked, _wire_async.AsyncWire.execute_chunked

    def counting(each: Any) -> Any:
        chunks = [0]

        def counted(res: Any) -> None:
            if not chunks[0]:
                read.append(0)
            chunks[0] += 1
            read[-1] += 1
            each(res)

        return counted

    def counted(self: Any, sql: str, params: Any, binary: bool, each: Any) -> Any:
        return sync(self, sql, params, binary, counting(each))

    async def acounted(self: Any, sql: str, params: Any, binary: bool, each: Any) -> Any:
        return await asynchronous(self, sql, params, binary, counting(each))

    monkeypatch.setattr(_wire.Wire, "execute_chunked", counted)
    monkeypatch.setattr(_wire_async.AsyncWire, "execute_chunked", acounted)
    return read


@pytest.fixture
def wire_calls(monkeypatch: pytest.MonkeyPatch, fresh_switch: Any) -> list[str]:
    """The SQL of each call a wire sent (sync or async), for the tests that need to know the wire was taken."""
    sent: list[str] = []
    sync, asynchronous = _wire.Wire.execute, _wire_async.AsyncWire.execute

    def counted(self: Any, sql: str, *args: Any) -> Any:
        made = sync(self, sql, *args)
        sent.extend([] if made is _wire.NOT_SENT else [sql])
        return made

    async def acounted(self: Any, sql: str, *args: Any) -> Any:
        made = await asynchronous(self, sql, *args)
        sent.extend([] if made is _wire.NOT_SENT else [sql])
        return made

    monkeypatch.setattr(_wire.Wire, "execute", counted)
    monkeypatch.setattr(_wire_async.AsyncWire, "execute", acounted)
    return sent
