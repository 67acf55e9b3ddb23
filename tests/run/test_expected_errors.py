"""Errors a stub declares (``errors=``) are expected: the call that raised one is undone alone, so that code which
catches it (a handler answering 409) still commits the rest of its session; its message is the server's, with its
DETAIL and HINT and without the stub's module; its span keeps the SQLSTATE. Tools meet real code without
crashing: stubs with a body, ``$1`` placeholders and context-local proxies each get a clear word."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgdecor import Database, RolledBackError, SignatureError, procedure, query, session
from tests.fix_db import Exec
from tests.fix_telemetry import Telemetry

SCHEMA = """
CREATE TABLE accounts (id int PRIMARY KEY, balance numeric NOT NULL);
INSERT INTO accounts VALUES (1, 5.00);
CREATE TABLE audit (what text NOT NULL);
CREATE FUNCTION withdraw(account int, amount numeric) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE left_over numeric;
BEGIN
    UPDATE accounts SET balance = balance - amount WHERE id = account RETURNING balance INTO left_over;
    IF left_over < 0 THEN
        RAISE EXCEPTION 'account % has less than %', account, amount USING ERRCODE = 'PG001',
            DETAIL = 'balance ' || (left_over + amount), HINT = 'withdraw less';
    END IF;
    RETURN left_over;
END $$;
"""


class InsufficientFundsError(Exception):
    """What the service's handlers catch."""


@procedure(errors={"PG001": InsufficientFundsError})
def withdraw(account: int, amount: Decimal) -> Decimal: ...


@procedure("withdraw", errors={"PG001": InsufficientFundsError})
async def awithdraw(account: int, amount: Decimal) -> Decimal: ...


@query("INSERT INTO audit VALUES (%(what)s)")
def audit(what: str) -> None: ...


@query("INSERT INTO audit VALUES (%(what)s)")
async def aaudit(what: str) -> None: ...


@query("SELECT 1 / 0")
def divide() -> int: ...


@query("SELECT 1 / 0")
async def adivide() -> int: ...


def _state(dsn: str) -> tuple[Any, list[str]]:
    with psycopg.connect(dsn) as conn:
        balance = conn.execute("SELECT balance FROM accounts WHERE id = 1").fetchone()
        audit = [w for (w,) in conn.execute("SELECT what FROM audit ORDER BY what").fetchall()]
    return balance[0] if balance else None, audit


@pytest.fixture
def bank(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(SCHEMA)
    return pg_dsn


def test_a_declared_error_caught_undoes_only_its_call(bank: str) -> None:
    """The session goes on after catching the declared error: its other writes commit, the failed withdrawal's
    update is undone, no `RolledBackError`; the same in an async session."""
    with Database(bank) as db, db.session():
        audit("before")
        with pytest.raises(InsufficientFundsError):
            withdraw(1, Decimal("9.00"))
        audit("after")
        assert withdraw(1, Decimal("2.00")) == Decimal("3.00")
    assert db.counters.committed == 1
    assert _state(bank) == (Decimal("3.00"), ["after", "before"])

    async def scenario() -> None:
        async with Database(bank) as adb, adb.session():
            await aaudit("async")
            with pytest.raises(InsufficientFundsError):
                await awithdraw(1, Decimal("9.00"))

    asyncio.run(scenario())
    assert _state(bank) == (Decimal("3.00"), ["after", "async", "before"])


def test_an_undeclared_error_caught_still_rolls_the_session_back(bank: str) -> None:
    """Only the errors the stub declares are expected: another database error caught by the code makes the
    session roll back loudly, as for any stub."""
    with pytest.raises(RolledBackError), session(bank):
        audit("lost")
        with pytest.raises(psycopg.errors.DivisionByZero):
            divide()
    assert _state(bank) == (Decimal("5.00"), [])


def test_a_mapped_error_says_what_the_server_said(bank: str) -> None:
    """``str()`` is the server's message, DETAIL and HINT (a handler may show it): not the stub's module, which is
    in the note with the SQLSTATE."""
    with session(bank), pytest.raises(InsufficientFundsError) as caught:
        withdraw(1, Decimal("9.00"))
    assert str(caught.value) == "account 1 has less than 9.00\nDETAIL:  balance 5.00\nHINT:  withdraw less"
    assert getattr(caught.value, "__notes__", [""])[0].startswith(
        "pgdecor: SQLSTATE PG001 from tests.run.test_expected_errors.withdraw"
    )


def test_a_mapped_error_keeps_its_sqlstate_in_the_span(bank: str, telemetry: Telemetry) -> None:
    with session(bank), pytest.raises(InsufficientFundsError):
        withdraw(1, Decimal("9.00"))
    (span,) = [s for s in telemetry.spans() if "withdraw" in s.name]
    assert span.attributes is not None
    assert (span.attributes["db.response.status_code"], span.attributes["error.type"]) == ("PG001", "PG001")


@pytest.mark.slow
def test_handlers_that_catch_a_declared_error_answer_409_and_commit_the_rest(bank: str) -> None:
    """Flask (WSGI) and FastAPI (ASGI) under the middleware: the handler catches the declared error and answers
    409; the response commits what else the request wrote (200 requests, not one 500)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from fastapi.testclient import TestClient
    from flask import Flask

    from pgdecor.asgi import SessionMiddleware as ASGISessions
    from pgdecor.wsgi import SessionMiddleware as WSGISessions

    with Database(bank) as db:
        flask = Flask(__name__)
        flask.wsgi_app = WSGISessions(flask.wsgi_app, db)  # type: ignore[method-assign]

        @flask.post("/withdraw/<int:n>")
        def take(n: int) -> Any:
            audit(f"flask {n:03}")
            try:
                return {"balance": str(withdraw(1, Decimal("100.00")))}
            except InsufficientFundsError as err:
                return {"error": str(err).splitlines()[0]}, 409

        client = flask.test_client()
        assert {client.post(f"/withdraw/{n}").status_code for n in range(100)} == {409}

    async_db = Database(bank)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with async_db:
            yield

    api = FastAPI(lifespan=lifespan)
    api.add_middleware(ASGISessions, source=async_db)

    @api.post("/withdraw/{n}")
    async def atake(n: int) -> Any:
        await aaudit(f"fastapi {n:03}")
        try:
            return {"balance": str(await awithdraw(1, Decimal("100.00")))}
        except InsufficientFundsError as err:
            return JSONResponse({"error": str(err).splitlines()[0]}, status_code=409)

    with TestClient(api) as aclient:
        assert {aclient.post(f"/withdraw/{n}").status_code for n in range(100)} == {409}
    balance, audited = _state(bank)
    assert balance == Decimal("5.00")
    assert len(audited) == 200
    assert db.counters.committed == async_db.counters.committed == 100


def test_a_stub_with_a_body_is_refused_at_import() -> None:
    """A body would never run: pgdecor runs the SQL in its place. `...`, a docstring and `raise
    NotImplementedError` are the bodies a stub may have."""
    with pytest.raises(SignatureError, match=r"the stub has a body, which would never run"):

        @query("SELECT 1")
        def five() -> int:
            return 5

    @query("SELECT 1")
    def documented() -> int:
        """One."""

    @query("SELECT 1")
    def unwritten() -> int:
        raise NotImplementedError

    @query("SELECT 1")
    async def aunwritten() -> int:
        raise NotImplementedError

    assert documented.sql == unwritten.sql == aunwritten.sql == "SELECT 1"


def test_positional_placeholders_get_their_own_message() -> None:
    with pytest.raises(SignatureError, match=r"uses the placeholder \$1, which pgdecor does not bind.*%\(id\)s"):

        @query("SELECT * FROM accounts WHERE id = $1")
        def account(id: int) -> int: ...


def test_check_passes_over_module_attributes_that_raise_when_looked_at(
    bank: str, tmp_path: Path, pg_exec: Exec
) -> None:
    """``pgdecor check`` on a service package whose module holds a context-local proxy (Flask's ``request``
    raises outside a request): the stubs are checked, and what it did not look into is said."""
    package = tmp_path / "shopapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "views.py").write_text(
        textwrap.dedent("""
            from decimal import Decimal

            from flask import request

            from pgdecor import procedure


            @procedure
            def withdraw(account: int, amount: Decimal) -> Decimal: ...
        """)
    )
    run = subprocess.run(
        [sys.executable, "-m", "pgdecor", "check", "shopapp", "--dsn", bank],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "did not look into shopapp.views.request (RuntimeError when looked at)" in run.stderr
    assert "0 problems" in run.stderr


def test_advice_names_the_form_of_the_sessions_kind(bank: str) -> None:
    """An async session's `RolledBackError` says `async with transaction()`, a sync one's `with transaction()`."""
    with (
        pytest.raises(RolledBackError, match=r"in `with transaction\(\):`"),
        session(bank),
        pytest.raises(psycopg.errors.DivisionByZero),
    ):
        divide()

    async def scenario() -> None:
        async with session(bank):
            with pytest.raises(psycopg.errors.DivisionByZero):
                await adivide()

    with pytest.raises(RolledBackError, match=r"in `async with transaction\(\):`"):
        asyncio.run(scenario())
