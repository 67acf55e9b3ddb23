"""`retried`: a function made a unit of work, run as one session of the source it is given, and run again from its
start while it fails in a way its `Retry` allows (`Database.run` and `Database.arun` do the same for one call).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from psycopg import IsolationLevel
from typing_extensions import ParamSpec

from pgdecor._session.modes import Isolation, mode

from .retry import run_unit
from .retry_async import arun_unit
from .retry_policy import Retry, retry_policy

__all__ = ["retried"]

P = ParamSpec("P")
T = TypeVar("T")


def retried(
    *, retry: Retry | int = 3, isolation: Isolation | IsolationLevel | None = None, readonly: bool = False
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Make a function a unit of work: each call runs it as one session of the source given as its first argument
    (a `Database`, a pool, a conninfo), begun with *isolation* and *readonly*, and runs it again from its start,
    in a new session, while it fails in a way *retry* (a `Retry`, or a number of retries) allows. Sync and async
    functions alike::

        @retried(retry=Retry(retries=5), isolation="serializable")
        def transfer(db: Database, source: int, target: int, amount: Decimal) -> None:
            debit(source, amount)
            credit(target, amount)

        transfer(db, 1, 2, Decimal("10.00"))
    """
    name = "retried()"
    policy = retry_policy(name, retry)
    chosen = mode(name, isolation, readonly, False)

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        code = getattr(fn, "__code__", None)
        where = f"{code.co_filename}:{code.co_firstlineno}" if code is not None else repr(fn)
        what = f"{getattr(fn, '__qualname__', fn)}()"
        if inspect.iscoroutinefunction(fn):

            async def aunit(source: Any, /, *args: Any, **kwargs: Any) -> Any:
                run = (source, *args)
                return await arun_unit(what, source, fn, run, kwargs, policy=policy, chosen=chosen, opened_at=where)

            return functools.wraps(fn)(aunit)  # type: ignore[return-value]

        def unit(source: Any, /, *args: Any, **kwargs: Any) -> Any:
            run = (source, *args)
            return run_unit(what, source, fn, run, kwargs, policy=policy, chosen=chosen, opened_at=where)

        return functools.wraps(fn)(unit)  # type: ignore[return-value]

    return decorate
