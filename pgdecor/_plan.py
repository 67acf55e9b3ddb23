"""A stub's plan, and the per-call path that runs it: sync and async twins over shared decisions."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import psycopg
from psycopg import pq

from ._annotations import describe
from ._errors import MappingError, NotFoundError, TooManyRowsError, UndefinedFunctionError, add_note
from ._mapping import COMPOSITE_QUERY, Composites, RowFactory, composite_info, composites_for, missing_composites
from ._results import ResultPlan, Shape
from ._session import _current, no_session_error
from ._signature import Param, check_args
from ._streams import AsyncStream, Stream

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_cursor_names = itertools.count(1)


@dataclass(eq=False)
class Plan:
    """Everything derived from a stub, computed once: SQL text, argument order, checks and row mapping."""

    #: ``module.qualname`` of the stub.
    stub: str
    #: What the SQL calls, for messages: ``function app.get_user`` or ``query``.
    sql_object: str
    sql: str
    params: tuple[Param, ...]
    result: ResultPlan
    is_async: bool
    #: For @procedure: the function name as written, to recognise "function does not exist" for it.
    function: str | None = None
    #: Typed Any: it serves as a psycopg row factory for sync and async cursors alike.
    row_factory: Any = field(default=None)

    def __post_init__(self) -> None:
        r = self.result
        if r.shape is not Shape.NONE:
            self.row_factory = RowFactory(self.stub, self.sql_object, r.row_type, scalar=r.scalar, nullable=r.nullable)
        self._checked = any(p.check is not None for p in self.params)

    # -- decisions shared by both runners ---------------------------------------------------------------------

    def check(self, args: tuple[Any, ...]) -> None:
        if self._checked:
            check_args(self.stub, self.params, args)

    def db_error(self, err: psycopg.Error) -> psycopg.Error:
        """The exception to raise for a database error: *err* with a note, or a clearer pgdecor error."""
        if self.function is not None and isinstance(err, psycopg.errors.UndefinedFunction) and err.diag.context is None:
            params = ", ".join(f"{p.name} => {describe(p.annotation)}" for p in self.params)
            msg = (
                f"{self.stub}: the database has no function {self.function}({params}). "
                f"Create it, fix the name with @procedure('schema.name'), or check the search_path "
                f"(server said: {err.diag.message_primary})"
            )
            new = UndefinedFunctionError(msg, info=err.pgresult)
            new.__cause__ = err
            return new
        add_note(err, f"pgdecor: raised by {self.stub}, which ran: {self.sql}")
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

    def composites_to_fetch(self, conn: Any, res: pq.abc.PGresult) -> tuple[Composites, list[int]] | None:
        factory = self.row_factory
        if factory is None or not factory.has_nested:
            return None
        composites = composites_for(conn)
        missing = missing_composites(factory, res, composites)
        return (composites, missing) if missing else None

    # -- sync -----------------------------------------------------------------------------------------------

    def run(self, args: tuple[Any, ...]) -> Any:
        self.check(args)
        sess = _current.get()
        if sess is None or sess._is_async:
            raise no_session_error(f"{self.stub}()", sess, is_async=False)
        conn = sess.connection()
        shape = self.result.shape
        try:
            if shape is Shape.STREAM:
                cur: Any = conn.cursor(f"pgdecor_{next(_cursor_names)}", row_factory=self.row_factory)
                try:
                    cur.execute(self.sql, args)
                except BaseException:
                    cur.close()
                    raise
                return Stream(self.stub, sess, cur)
            if shape is Shape.NONE:
                conn.execute(self.sql, args)
                return None
            cur = conn.cursor(row_factory=self.row_factory)
            cur.execute(self.sql, args)
            res = cur.pgresult
            if res.status != _TUPLES_OK:
                self.no_result_set()
            fetch = self.composites_to_fetch(conn, res)
            while fetch is not None:
                composites, oids = fetch
                for oid in oids:
                    row = conn.execute(COMPOSITE_QUERY, (oid,)).fetchone()
                    composites.add(composite_info(oid, row))
                fetch = self.composites_to_fetch(conn, res)
        except psycopg.Error as err:
            raise self.db_error(err) from None
        if shape is Shape.MANY:
            return cur.fetchall()
        n = res.ntuples
        if n == 1:
            return cur.fetchone()
        return self.not_one(n)

    # -- async ----------------------------------------------------------------------------------------------

    async def arun(self, args: tuple[Any, ...]) -> Any:
        self.check(args)
        sess = _current.get()
        if sess is None or not sess._is_async:
            raise no_session_error(f"{self.stub}()", sess, is_async=True)
        conn = await sess.aconnection()
        shape = self.result.shape
        try:
            if shape is Shape.STREAM:
                cur: Any = conn.cursor(f"pgdecor_{next(_cursor_names)}", row_factory=self.row_factory)
                try:
                    await cur.execute(self.sql, args)
                except BaseException:
                    await cur.close()
                    raise
                return AsyncStream(self.stub, sess, cur)
            if shape is Shape.NONE:
                await conn.execute(self.sql, args)
                return None
            cur = conn.cursor(row_factory=self.row_factory)
            await cur.execute(self.sql, args)
            res = cur.pgresult
            if res.status != _TUPLES_OK:
                self.no_result_set()
            fetch = self.composites_to_fetch(conn, res)
            while fetch is not None:
                composites, oids = fetch
                for oid in oids:
                    row = await (await conn.execute(COMPOSITE_QUERY, (oid,))).fetchone()
                    composites.add(composite_info(oid, row))
                fetch = self.composites_to_fetch(conn, res)
        except psycopg.Error as err:
            raise self.db_error(err) from None
        if shape is Shape.MANY:
            return await cur.fetchall()
        n = res.ntuples
        if n == 1:
            return await cur.fetchone()
        return self.not_one(n)

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


Runner = Callable[[tuple[Any, ...]], Any]
