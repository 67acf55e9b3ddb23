"""`copy_in` and `copy_out`: COPY stubs, which stream rows of a row type into a table, or out of it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from typing_extensions import ParamSpec

from pgdecor._annotations import qualified_name
from pgdecor._errors import SignatureError
from pgdecor._plan.copy import CopyPlan, Direction, read_copy_stub
from pgdecor._run.copy import Copier
from pgdecor._run.copy_async import AsyncCopier
from pgdecor._run.copy_out import CopyStream
from pgdecor._run.copy_out_async import AsyncCopyStream

from .caller import Compiled, compiled, make_caller, set_target
from .signature import hints_of, signature_of

__all__ = ["CopyStub", "copy_in", "copy_out"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class CopyStub(Protocol[P, R_co]):
    """What `copy_in` and `copy_out` return: the stub's own signature, plus what pgdecor made of it."""

    #: The COPY statement sent, once composed (at the first call on a server: the columns' types decide its format).
    sql: str | None
    #: The table, as the stub names it.
    table: str
    __name__: str
    __qualname__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


class _CopyStub(Compiled):
    """A `CopyStub` as `_build` makes it: its `.sql` is read from its plan."""

    table: str
    runner: Copier | AsyncCopier
    __pgdecor_copy__: Callable[[], CopyPlan]  # how `pgdecor check` finds COPY stubs

    @property
    def sql(self) -> str | None:
        runner: Copier | AsyncCopier | None = self.__dict__.get("runner")  # made once the annotations resolve
        return None if runner is None else runner.plan.composed


class _CopyDecorator:
    """The decorator returned by ``@copy_in(table)`` and ``@copy_out(table)``."""

    __slots__ = ("_direction", "_table")

    def __init__(self, table: str, direction: Direction) -> None:
        self._table = table
        self._direction = direction

    def __call__(self, fn: Callable[P, R], /) -> CopyStub[P, R]:
        built: CopyStub[P, R] = _build(fn, self._table, self._direction)
        return built


def copy_in(table: str, /) -> _CopyDecorator:
    """Turn a typed stub into a COPY of rows into *table* (``"name"`` or ``"schema.name"``), in the current
    session's transaction; it returns how many rows the table got::

        @copy_in("app.users")
        def load_users(rows: Iterable[User]) -> int: ...

        @copy_in("app.users")
        async def aload_users(rows: Iterable[User] | AsyncIterable[User]) -> int: ...

    The rows are objects of a row type (dataclass, NamedTuple, TypedDict, pydantic model, attrs class, msgspec
    Struct), read as they come, a batch at a time; each field fills the column of its name, and the columns the
    type has no field for get their defaults. The COPY is binary where psycopg has a binary form for every
    column's type, text otherwise. A value a column cannot take raises `ArgumentError` naming the row (its index
    in the rows) and the column; a row the server refuses raises the server's error, noted with the same. Either
    way the COPY stores nothing, and the session's transaction is rolled back with it, as after any error.
    """
    return _CopyDecorator(_table_name("@copy_in", table), Direction.IN)


def copy_out(table: str, /) -> _CopyDecorator:
    """Turn a typed stub into a COPY of *table*'s rows out of the database, as a stream of its row type::

        @copy_out("app.users")
        def export_users() -> Iterator[User]: ...

        @copy_out("app.users")
        def aexport_users() -> AsyncIterator[User]: ...  # iterate it directly: ``async for u in aexport_users()``

    Columns are matched with the row type's fields by name: the table's other columns are not read, and a field
    with a default may have no column. Rows are read a batch at a time, as the stream is iterated; until it ends,
    the session's connection is busy with the COPY: read it to its end, or close it, before the session's next
    call. Annotate the stub ``-> CopyStream[User]`` (``-> AsyncCopyStream[User]``) to close it early: it is a
    context manager. Closing it stops the COPY on the server (it runs in a savepoint, rolled back to: the
    session's transaction goes on); the session closes the streams still open as it ends.
    """
    return _CopyDecorator(_table_name("@copy_out", table), Direction.OUT)


def _table_name(where: str, table: object) -> str:
    if not isinstance(table, str):
        msg = f"{where} takes the table's name as a string ('table' or 'schema.table'), not {type(table).__qualname__}"
        raise SignatureError(msg)
    parts = table.split(".")
    if not 1 <= len(parts) <= 2 or not all(parts):
        msg = f"{where}: {table!r} is not a table name; write 'table' or 'schema.table'"
        raise SignatureError(msg)
    return table


def _build(fn: Callable[..., Any], table: str, direction: Direction) -> Any:
    stub = qualified_name(fn)
    sig, receiver = signature_of(fn, stub, variadic=False)
    if receiver is not None:
        msg = f"{stub}: a COPY stub is a function, not a method; define it at module level (or as a staticmethod)"
        raise SignatureError(msg)
    order = tuple(sig.parameters)
    coroutine = inspect.iscoroutinefunction(fn)

    def current_plan(hints: dict[str, Any] | None = None) -> CopyPlan:
        runner: Copier | AsyncCopier | None = getattr(made, "runner", None)
        if runner is None:
            hints = hints or hints_of(fn, stub, strict=True)
            assert hints is not None
            params = [(name, hints[name]) for name in order]
            plan = read_copy_stub(
                stub,
                tuple(table.split(".")),
                direction,
                params,
                hints["return"],
                coroutine=coroutine,
                streams=(CopyStream, AsyncCopyStream),
            )
            runner = AsyncCopier(plan) if plan.is_async else Copier(plan)
            set_target(caller, _target(runner))
            made.runner = runner
        return runner.plan

    def first_call(args: tuple[Any, ...]) -> Any:  # until the annotations resolve (a class defined later)
        current_plan()
        return _target(made.runner)(args)

    caller = make_caller(fn, sig, order, first_call)
    made = compiled(_CopyStub, caller, fn)
    made.table = table
    made.__pgdecor_copy__ = current_plan
    hints = hints_of(fn, stub)
    if hints is not None:
        current_plan(hints)
    return made


def _target(runner: Copier | AsyncCopier) -> Callable[[tuple[Any, ...]], Any]:
    plan = runner.plan
    if plan.direction is Direction.IN:
        return runner.copy_in
    if isinstance(runner, AsyncCopier) and plan.lazy:
        return runner.lazy
    return runner.copy_out
