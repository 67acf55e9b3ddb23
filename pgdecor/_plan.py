"""A stub's plan, and the per-call path that runs it: sync and async twins over shared decisions.

Per call: check the arguments, find the session's connection, take the cached statement, execute, fetch. The
rare paths (first call on a server: resolve the function; first sight of a non-builtin type: describe it) are
catalog queries made by the twins, with every decision in the shared code they call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import psycopg
from psycopg import pq

from ._annotations import describe
from ._calls import ProcedureCall, QueryCall, Statement
from ._errors import Error, MappingError, NotFoundError, TooManyRowsError, UndefinedFunctionError, add_note
from ._mapping import RowFactory
from ._registry import DESCRIBE_QUERY, ServerKey, registry_for
from ._results import ResultPlan, Shape
from ._session import _current, no_session_error
from ._signature import Param, check_args
from ._streams import AsyncStream, Stream

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_NONE, _ONE, _ALL = 0, 1, 2
_cursor_names = itertools.count(1)

ErrorMap = Mapping[str, Callable[[str], BaseException]]


@dataclass(eq=False)
class Plan:
    """Everything derived from a stub, computed once: the call, argument checks and row mapping."""

    #: ``module.qualname`` of the stub.
    stub: str
    #: What the SQL calls, for messages: ``function app.get_user`` or ``the query``.
    sql_object: str
    call: QueryCall | ProcedureCall
    #: One per argument the generated caller packs, in that order.
    params: tuple[Param, ...]
    result: ResultPlan
    is_async: bool
    #: SQLSTATE → exception class raised instead of psycopg's.
    errors: ErrorMap = field(default_factory=dict)
    #: Called with the SQL of each newly composed statement (keeps the stub's ``.sql`` current).
    on_sql: Callable[[str], None] = lambda _sql: None
    #: Typed Any: they serve as psycopg row factories for sync and async cursors alike. The value factory maps
    #: the single column of a function returning one value onto the whole return annotation.
    row_factory: Any = None
    value_factory: Any = None

    def __post_init__(self) -> None:
        r = self.result
        if r.shape is not Shape.NONE:
            self.row_factory = RowFactory(self.stub, self.sql_object, r.row_type, scalar=r.scalar, nullable=r.nullable)
            self.value_factory = RowFactory(
                self.stub, self.sql_object, r.value_type, scalar=True, nullable=r.value_nullable
            )
        self._checked = any(p.check is not None for p in self.params)
        #: Servers on which this plan's row types have been described (see `first_of_many`).
        self._described: set[ServerKey] = set()

    # -- decisions shared by both runners ---------------------------------------------------------------------

    def check(self, args: tuple[Any, ...]) -> None:
        if self._checked:
            check_args(self.stub, self.params, args)

    def composed(self, key: ServerKey, args: tuple[Any, ...]) -> Statement:
        """The statement for *args* once the call has been resolved on *key*."""
        assert isinstance(self.call, ProcedureCall)
        statement = self.call.statement(key, args)
        self.on_sql(statement.sql)
        return statement

    def db_error(self, err: psycopg.Error, statement: Statement | None) -> BaseException:
        """The exception to raise for a database error: a mapped one, a clearer pgdecor one, or *err* + a note."""
        ran = f"which ran: {statement.sql}" if statement is not None else "while resolving it"
        mapped = self.errors.get(err.sqlstate or "")
        if mapped is not None:
            new = mapped(f"{self.stub}: {err.diag.message_primary}")
            new.__cause__ = err
            add_note(new, f"pgdecor: SQLSTATE {err.sqlstate} from {self.stub}, {ran}")
            return new
        if (
            isinstance(self.call, ProcedureCall)
            and isinstance(err, psycopg.errors.UndefinedFunction)
            and err.diag.context is None
        ):
            params = ", ".join(f"{p.name} => {describe(p.annotation)}" for p in self.call.params)
            msg = (
                f"{self.stub}: the database has no function {'.'.join(self.call.name)}({params}) any more; "
                f"it was dropped or changed after this process first called it (server said: "
                f"{err.diag.message_primary}); restart the process after changing function signatures"
            )
            new = UndefinedFunctionError(msg, info=err.pgresult)
            new.__cause__ = err
            return new
        add_note(err, f"pgdecor: raised by {self.stub}, {ran}")
        return err

    def not_one(self, count: int) -> None:
        """Handle a single-row result that does not have exactly one row."""
        shape = self.result.shape
        if count == 0:
            if shape is Shape.OPTIONAL:
                return
            msg = (
                f"{self.stub}: {self.sql_object} returned no row but the stub returns exactly one; "
                f"annotate it `-> ... | None` to accept no row"
            )
            raise NotFoundError(msg)
        msg = (
            f"{self.stub}: {self.sql_object} returned {count} rows but the stub returns {shape.value}; "
            f"annotate it `-> list[...]` to get them all, or make the SQL return one row"
        )
        raise TooManyRowsError(msg)

    def no_result_set(self) -> NoReturn:
        msg = (
            f"{self.stub}: {self.sql_object} returned no rows at all (it is not a SELECT and has no RETURNING) "
            f"but the stub returns {self.result.shape.value}; annotate it `-> None` or add RETURNING"
        )
        raise MappingError(msg)

    def factory(self, statement: Statement) -> Any:
        return self.value_factory if statement.value else self.row_factory

    def fetch_kind(self, statement: Statement, res: pq.abc.PGresult | None) -> int:
        """How to fetch a result: `_ONE` (fetchone) or `_ALL` (fetchall); raises for a wrong row count."""
        if res is None or res.status != _TUPLES_OK:
            self.no_result_set()
        if statement.value:
            return _ONE
        if self.result.shape is Shape.MANY:
            return _ALL
        n = res.ntuples
        if n == 1:
            return _ONE
        self.not_one(n)
        return _NONE

    def batches(self, key: ServerKey, argsets: list[tuple[Any, ...]]) -> list[tuple[Statement, list[Any]]]:
        """*argsets* (the call resolved on *key*) as runs of consecutive calls sharing one statement."""
        out: list[tuple[Statement, list[Any]]] = []
        for args in argsets:
            statement = self.call.cached(key, args) or self.composed(key, args)
            if not out or out[-1][0] is not statement:
                out.append((statement, []))
            out[-1][1].append(statement.params(args))
        return out

    def check_many(self, argsets: list[tuple[Any, ...]]) -> None:
        if self._checked:
            for args in argsets:
                check_args(self.stub, self.params, args)

    def first_of_many(self, key: ServerKey, argsets: list[tuple[Any, ...]]) -> bool:
        """Whether the first call of a batch must run alone: to resolve the call or describe its row types."""
        if self.call.cached(key, argsets[0]) is None:
            return True
        factory = self.factory(self.call.cached(key, argsets[0]))  # type: ignore[arg-type]
        return factory is not None and factory.uses_registry and key not in self._described

    def missing_types(self, factory: Any, key: ServerKey, res: pq.abc.PGresult | None) -> list[int]:
        if factory is None or not factory.uses_registry or res is None:
            return []
        return factory.missing_types(res, registry_for(key))  # type: ignore[no-any-return]

    # -- sync -----------------------------------------------------------------------------------------------

    def run(self, args: tuple[Any, ...]) -> Any:
        self.check(args)
        sess = _current.get()
        if sess is None or sess._is_async:
            raise no_session_error(f"{self.stub}()", sess, is_async=False)
        conn = sess.connection()
        key = sess._key
        shape = self.result.shape
        statement = self.call.cached(key, args)
        try:
            if statement is None:
                statement = self._resolve(conn, key, args)
            params = statement.params(args)
            if shape is Shape.NONE:
                conn.execute(statement.sql, params)
                return None
            if shape is Shape.STREAM:
                cur: Any = conn.cursor(f"pgdecor_{next(_cursor_names)}", row_factory=self.row_factory)
                try:
                    cur.execute(statement.sql, params)
                    self._describe(conn, key, cur, self.row_factory)
                except BaseException:
                    cur.close()
                    raise
                return Stream(self.stub, sess, cur)
            factory = self.factory(statement)
            cur = conn.cursor(row_factory=factory)
            cur.execute(statement.sql, params)
            kind = self.fetch_kind(statement, cur.pgresult)
            self._describe(conn, key, cur, factory)
        except Error:
            raise
        except psycopg.Error as err:
            exc = self.db_error(err, statement)
            raise exc from exc.__cause__
        return cur.fetchone() if kind is _ONE else cur.fetchall() if kind is _ALL else None

    def run_many(self, argsets: list[tuple[Any, ...]]) -> Any:
        """Run the call once per argument tuple, pipelined: one round trip for the whole batch."""
        self.check_many(argsets)
        sess = _current.get()
        if sess is None or sess._is_async:
            raise no_session_error(f"{self.stub}.many()", sess, is_async=False)
        conn = sess.connection()
        key = sess._key
        out: list[Any] = []
        if argsets and self.first_of_many(key, argsets):
            out.append(self.run(argsets[0]))
            self._described.add(key)
            argsets = argsets[1:]
        statement = None
        try:
            for statement, params in self.batches(key, argsets):
                if self.result.shape is Shape.NONE:
                    conn.cursor().executemany(statement.sql, params)
                    continue
                cur = conn.cursor(row_factory=self.factory(statement))
                cur.executemany(statement.sql, params, returning=True)
                while True:
                    kind = self.fetch_kind(statement, cur.pgresult)
                    out.append(cur.fetchone() if kind is _ONE else cur.fetchall() if kind is _ALL else None)
                    if not cur.nextset():
                        break
        except Error:
            raise
        except psycopg.Error as err:
            exc = self.db_error(err, statement)
            raise exc from exc.__cause__
        return None if self.result.shape is Shape.NONE else out

    def _resolve(self, conn: psycopg.Connection[Any], key: ServerKey, args: tuple[Any, ...]) -> Statement:
        call = self.call
        assert isinstance(call, ProcedureCall)
        if call.needs_catalog(key):
            rows = conn.execute(*call.catalog_queries()).fetchall()
            type_rows = conn.execute(*call.types_query(rows)).fetchall()
            call.resolve(key, rows, type_rows)
        return self.composed(key, args)

    def _describe(self, conn: psycopg.Connection[Any], key: ServerKey, cur: Any, factory: Any) -> None:
        missing = self.missing_types(factory, key, cur.pgresult)
        if missing:
            registry = registry_for(key)
            while missing:
                missing = registry.add(conn.execute(DESCRIBE_QUERY, [missing]).fetchall())
            cur.row_factory = factory  # makes the row maker again, now that the types are known

    # -- async ----------------------------------------------------------------------------------------------

    async def arun(self, args: tuple[Any, ...]) -> Any:
        self.check(args)
        sess = _current.get()
        if sess is None or not sess._is_async:
            raise no_session_error(f"{self.stub}()", sess, is_async=True)
        conn = await sess.aconnection()
        key = sess._key
        shape = self.result.shape
        statement = self.call.cached(key, args)
        try:
            if statement is None:
                statement = await self._aresolve(conn, key, args)
            params = statement.params(args)
            if shape is Shape.NONE:
                await conn.execute(statement.sql, params)
                return None
            if shape is Shape.STREAM:
                cur: Any = conn.cursor(f"pgdecor_{next(_cursor_names)}", row_factory=self.row_factory)
                try:
                    await cur.execute(statement.sql, params)
                    await self._adescribe(conn, key, cur, self.row_factory)
                except BaseException:
                    await cur.close()
                    raise
                return AsyncStream(self.stub, sess, cur)
            factory = self.factory(statement)
            cur = conn.cursor(row_factory=factory)
            await cur.execute(statement.sql, params)
            kind = self.fetch_kind(statement, cur.pgresult)
            await self._adescribe(conn, key, cur, factory)
        except Error:
            raise
        except psycopg.Error as err:
            exc = self.db_error(err, statement)
            raise exc from exc.__cause__
        return await cur.fetchone() if kind is _ONE else await cur.fetchall() if kind is _ALL else None

    async def arun_many(self, argsets: list[tuple[Any, ...]]) -> Any:
        self.check_many(argsets)
        sess = _current.get()
        if sess is None or not sess._is_async:
            raise no_session_error(f"{self.stub}.many()", sess, is_async=True)
        conn = await sess.aconnection()
        key = sess._key
        out: list[Any] = []
        if argsets and self.first_of_many(key, argsets):
            out.append(await self.arun(argsets[0]))
            self._described.add(key)
            argsets = argsets[1:]
        statement = None
        try:
            for statement, params in self.batches(key, argsets):
                if self.result.shape is Shape.NONE:
                    await conn.cursor().executemany(statement.sql, params)
                    continue
                cur = conn.cursor(row_factory=self.factory(statement))
                await cur.executemany(statement.sql, params, returning=True)
                while True:
                    kind = self.fetch_kind(statement, cur.pgresult)
                    out.append(await cur.fetchone() if kind is _ONE else await cur.fetchall() if kind is _ALL else None)
                    if not cur.nextset():
                        break
        except Error:
            raise
        except psycopg.Error as err:
            exc = self.db_error(err, statement)
            raise exc from exc.__cause__
        return None if self.result.shape is Shape.NONE else out

    async def _aresolve(self, conn: psycopg.AsyncConnection[Any], key: ServerKey, args: tuple[Any, ...]) -> Statement:
        call = self.call
        assert isinstance(call, ProcedureCall)
        if call.needs_catalog(key):
            rows = await (await conn.execute(*call.catalog_queries())).fetchall()
            type_rows = await (await conn.execute(*call.types_query(rows))).fetchall()
            call.resolve(key, rows, type_rows)
        return self.composed(key, args)

    async def _adescribe(self, conn: psycopg.AsyncConnection[Any], key: ServerKey, cur: Any, factory: Any) -> None:
        missing = self.missing_types(factory, key, cur.pgresult)
        if missing:
            registry = registry_for(key)
            while missing:
                missing = registry.add(await (await conn.execute(DESCRIBE_QUERY, [missing])).fetchall())
            cur.row_factory = factory  # makes the row maker again, now that the types are known

    def stream(self, args: tuple[Any, ...]) -> Any:
        """Entry point for ``def f() -> AsyncIterator[T]`` stubs: an async iterator that runs on first use."""
        return _LazyAsyncStream(self, args)


class _LazyAsyncStream:
    """What a plain ``def`` stub annotated ``-> AsyncIterator[T]`` returns: the query runs at first ``anext``."""

    __slots__ = ("_args", "_plan", "_stream")

    def __init__(self, plan: Plan, args: tuple[Any, ...]) -> None:
        plan.check(args)
        self._plan = plan
        self._args = args
        self._stream: AsyncStream[Any] | None = None

    def __aiter__(self) -> _LazyAsyncStream:
        return self

    async def __anext__(self) -> Any:
        if self._stream is None:
            self._stream = await self._plan.arun(self._args)
        return await self._stream.__anext__()

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
