"""The sync execution and session layer is generated from its async source: the two cannot drift apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import async_to_sync  # noqa: E402 - a development script, found by path


@pytest.mark.slow
def test_every_sync_module_is_what_its_async_source_makes() -> None:
    """`tools/async_to_sync.py --check` passes on the tree: no generated module was edited by hand or left stale."""
    done = subprocess.run(
        [sys.executable, "tools/async_to_sync.py", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout) == (0, "")


def test_every_async_module_of_the_package_generates_its_sync_twin() -> None:
    """No sync module is kept by hand beside an async one: every ``*_async.py`` of pgdecor is a source that
    `tools/async_to_sync.py` writes a sync module from."""
    sources = {path.relative_to(ROOT).as_posix() for path in (ROOT / "pgdecor").rglob("*_async.py")}
    assert sources - set(async_to_sync.MODULES) == set()


SOURCE = '''"""An async module."""

from __future__ import annotations

from psycopg import AsyncConnection

from ._shield import finish

__all__ = ["AsyncLease"]


class AsyncLease:
    """`AsyncLease` holds an `AsyncConnection`."""

    async def __aexit__(self, *exc: object) -> None:
        await finish(self.conn.close(), statement_on=self.conn)  # ended through cancellations
        async with self.conn.lock:
            pass
        if True:  # ASYNC
            kind = "async"
        else:
            kind = "sync"
        self.check(kind, is_async=True)
        try:
            await self.conn.execute()
        except BaseException:
            if True:  # ASYNC
                await self.stop()
            raise
        finally:
            self.done()
'''

EXPECTED = '''"""The sync twin of `pgdecor._session.lease_async`, generated from it: see there."""

from __future__ import annotations

__all__ = ["Lease"]


class Lease:
    """`Lease` holds an `Connection`."""

    def __exit__(self, *exc: object) -> None:
        self.conn.close()  # ended through cancellations
        with self.conn.lock:
            pass
        kind = "sync"
        self.check(kind, is_async=False)
        try:
            self.conn.execute()
        finally:
            self.done()
'''


def test_the_transform_drops_async_unwraps_finish_renames_and_keeps_sync_branches() -> None:
    """What the generator does, on a small module: each rule of its docstring, and unused imports gone."""
    made = async_to_sync.convert(SOURCE, "pgdecor/_session/lease_async.py")
    header, _, body = made.partition("\n")
    assert header.startswith("# Generated from pgdecor/_session/lease_async.py by tools/async_to_sync.py: do not edit")
    assert body == EXPECTED


TEST_SOURCE = '''"""Async tests."""

import pytest
from psycopg import AsyncConnection

from pgdecor import AsyncStream, session
from tests.usercode.userdb import aget_user, aload_user


async def test_a(users: str, stream: AsyncStream[int]) -> None:
    """`aget_user` is named in strings too."""
    async with session(users):
        with pytest.raises(LookupError, match=r"userdb\\.aload_user: no row"):
            await aload_user(99)
        assert (await aget_user(1)).id == [i async for i in stream][0]
    with pytest.raises(KeyError):
        async with session(users):
            raise KeyError
    async with await AsyncConnection.connect(users) as conn:
        with pytest.raises(KeyError):
            raise KeyError(conn)
'''

TEST_EXPECTED = '''"""The sync twin of `tests.plan.test_results_async`, generated from it: see there."""

import pytest
from psycopg import Connection

from pgdecor import Stream, session
from tests.usercode.userdb import get_user, load_user


def test_a(users: str, stream: Stream[int]) -> None:
    """`get_user` is named in strings too."""
    with session(users):
        with pytest.raises(LookupError, match=r"userdb\\.load_user: no row"):
            load_user(99)
        assert get_user(1).id == list(stream)[0]
    with pytest.raises(KeyError), session(users):
        raise KeyError
    with Connection.connect(users) as conn, pytest.raises(KeyError):
        raise KeyError(conn)
'''


def test_the_transform_of_a_test_module_renames_stubs_in_strings_and_merges_nested_withs() -> None:
    """An async test module's sync twin: its stubs renamed in code and in the messages it expects, `(await x).y`
    and `[i async for i in xs]` as a sync test writes them, and a `with` nested alone in another merged with it
    (an item's own `await` dropped)."""
    made = async_to_sync.convert(TEST_SOURCE, "tests/plan/test_results_async.py")
    header, _, body = made.partition("\n")
    assert header.startswith("# Generated from tests/plan/test_results_async.py by tools/async_to_sync.py")
    assert body == TEST_EXPECTED
