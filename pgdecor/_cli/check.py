"""`pgdecor check`: every stub of some modules, verified against a live database before a request fails: a call
stub's function and statement (`_cli.check_calls`), a COPY stub's table (`_cli.check_copy`), with what the catalog
says of types looked up once for all of them (`_cli.check_catalog`). All of it runs on a connection whose
transactions are read-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

import psycopg

from pgdecor._errors import Error
from pgdecor._plan.copy import CopyPlan
from pgdecor._sources.config import check_conninfo

from .check_calls import CallCheck
from .check_catalog import Catalog
from .check_copy import copy_problems
from .discover import FoundStub, Problem, find_stubs

__all__ = ["Problem", "check", "check_found", "find_stubs"]


def check(modules: Iterable[str | ModuleType], source: str | psycopg.Connection[Any]) -> list[Problem]:
    """Verify every stub of *modules* against the database at *source* (a conninfo or a connection); return
    the problems found, none if the stubs and the database agree. Nothing is written to the database, and a
    connection given is left as it was found: the check runs in a read-only transaction of its own (a savepoint
    if the connection is in a transaction already), rolled back at the end."""
    return check_found(find_stubs(modules), source)


def check_found(stubs: list[FoundStub], source: str | psycopg.Connection[Any]) -> list[Problem]:
    """`check` for stubs found already."""
    if isinstance(source, str):
        check_conninfo("check()", source)
        with psycopg.connect(source, autocommit=True) as conn:
            return _check_all(stubs, conn)
    return _check_all(stubs, source)


def _check_all(stubs: list[FoundStub], conn: psycopg.Connection[Any]) -> list[Problem]:
    problems: list[Problem] = []
    catalog = Catalog(conn)
    with conn.transaction(force_rollback=True):
        conn.execute("SET TRANSACTION READ ONLY")
        for found in stubs:
            try:
                plan = found.plan()
            except Error as err:
                problem = Problem(found.location, found.stub, "the stub cannot be built", str(err), "fix the stub")
                problems.append(problem)
                continue
            if plan is None:
                continue
            if isinstance(plan, CopyPlan):
                problems.extend(Problem(found.location, found.stub, *p) for p in copy_problems(plan, conn))
                continue
            problems.extend(CallCheck(found, plan, catalog).run())
    return problems
