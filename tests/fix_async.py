"""Runs the suite's ``async def`` tests, each in an event loop of its own (`asyncio.run`), as its sync tests run
their coroutines: the async twins of the tests written once (their sources, `tests/**/test_*_async.py`, make the
sync modules by tools/async_to_sync.py). pytest-asyncio is not loaded (pyproject.toml's addopts), and anyio's
plugin takes only the tests marked for it."""

from __future__ import annotations

import asyncio
import inspect

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj) or pyfuncitem.get_closest_marker("anyio"):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**arguments))
    return True
