"""What a COPY stub's kind lets it read: rows from an async iterable only an ``async def`` stub reads, and a sync
stub that declares them is refused when decorated. A sync stub cannot be written with an async annotation in an
async source (tools/async_to_sync.py renames it): this test has no async twin (the other tests of COPY stubs are
tests/run/test_copy_async.py's, and of its generated twin)."""

from __future__ import annotations

from collections.abc import AsyncIterable

import pytest

from pgdecor import SignatureError, copy_in
from tests.usercode.copy_stubs_async import Person


def test_a_sync_stub_declaring_async_rows_is_refused_when_decorated() -> None:
    """A sync @copy_in stub whose rows are an `AsyncIterable` raises SignatureError at import, saying to declare it
    `async def`."""
    with pytest.raises(SignatureError, match="which a sync stub cannot read; declare the stub `async def`"):

        @copy_in("people")
        def sync(rows: AsyncIterable[Person]) -> int: ...
