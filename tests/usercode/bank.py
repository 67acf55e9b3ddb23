"""A money-transfer service, as a Flask app (for gunicorn) and a FastAPI app (for uvicorn), written as the README
says. Both read ``BANK_DSN`` and serve:

- ``POST /transfer?req=ID&src=A&dst=B&amount=N[&fault=F]``: move money and write the ledger row ``ID`` in one
  transaction, answering 200 with the source's new balance. Faults: ``raise`` (the handler raises after
  writing), ``status`` (it answers 500 itself after writing), ``caught`` (it catches a database error and answers
  200: the session cannot commit), ``timeout`` (the statement outlives ``statement_timeout``), ``slow`` (the
  statement runs 0.3 s, for clients that hang up), ``deferred`` (a deferred constraint fails at COMMIT).
- ``GET /whoami``: this worker's pid and its backend's pid; ``GET /counters``: the worker's session counters.

Both disable the cyclic garbage collector: nothing may depend on it.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import psycopg

from pgdecor import Database, query

SCHEMA = """
DROP TABLE IF EXISTS ledger, accounts, uniq;
CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
INSERT INTO accounts SELECT i, 1000 FROM generate_series(1, 20) i;
CREATE TABLE ledger (request text PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount int NOT NULL);
CREATE TABLE uniq (k int, CONSTRAINT once UNIQUE (k) DEFERRABLE INITIALLY DEFERRED);
CREATE OR REPLACE FUNCTION transfer(request text, src int, dst int, amount int, pause float8 DEFAULT 0)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    left_over bigint;
BEGIN
    UPDATE accounts SET balance = balance - amount WHERE id = src RETURNING balance INTO left_over;
    UPDATE accounts SET balance = balance + amount WHERE id = dst;
    INSERT INTO ledger VALUES (request, src, dst, amount);
    PERFORM pg_sleep(pause);
    RETURN left_over;
END $$;
"""

TOTAL = 20 * 1000
APPLICATION = "bank"


@query("SELECT transfer(%(req)s, %(src)s, %(dst)s, %(amount)s, %(pause)s)")
def transfer(req: str, src: int, dst: int, amount: int, pause: float) -> int: ...


@query("SELECT transfer(%(req)s, %(src)s, %(dst)s, %(amount)s, %(pause)s)")
async def atransfer(req: str, src: int, dst: int, amount: int, pause: float) -> int: ...


@query("SELECT set_config('statement_timeout', '50ms', true)")
def short_timeout() -> str: ...


@query("SELECT set_config('statement_timeout', '50ms', true)")
async def ashort_timeout() -> str: ...


@query("INSERT INTO uniq VALUES (1), (1)")
def break_at_commit() -> None: ...


@query("INSERT INTO uniq VALUES (1), (1)")
async def abreak_at_commit() -> None: ...


@query("SELECT 1 / 0")
def fail() -> int: ...


@query("SELECT 1 / 0")
async def afail() -> int: ...


@query("SELECT pg_backend_pid()")
def backend_pid() -> int: ...


@query("SELECT pg_backend_pid()")
async def abackend_pid() -> int: ...


class PlannedError(RuntimeError):
    """The fault a request asked for."""


def _dsn() -> str:
    return psycopg.conninfo.make_conninfo(os.environ["BANK_DSN"], application_name=APPLICATION)


def _pool_size() -> int:
    return int(os.environ.get("BANK_POOL", "4"))


# -- Flask under gunicorn ----------------------------------------------------------------------------------------


def flask_app() -> Any:
    """The Flask app, as the README writes it: ``gunicorn 'bank:flask_app()'``."""
    from flask import Flask, request

    from pgdecor.wsgi import SessionMiddleware

    gc.disable()
    app = Flask(__name__)
    db = Database(_dsn(), max_size=_pool_size(), timeout=10).__enter__()
    app.wsgi_app = SessionMiddleware(app.wsgi_app, db)  # type: ignore[method-assign]

    @app.post("/transfer")
    def move() -> Any:
        args = request.args
        fault = args.get("fault", "")
        if fault == "timeout":
            short_timeout()
        pause = 0.3 if fault in ("slow", "timeout") else 0.0
        src, dst, amount = int(args["src"]), int(args["dst"]), int(args["amount"])
        balance = transfer(args["req"], src, dst, amount, pause)
        if fault == "raise":
            raise PlannedError(fault)
        if fault == "status":
            return {"error": "refused"}, 500
        if fault == "caught":
            with suppress(psycopg.errors.DivisionByZero):
                fail()
        if fault == "deferred":
            break_at_commit()
        return {"balance": balance}

    @app.get("/whoami")
    def whoami() -> Any:
        return {"pid": os.getpid(), "backend": backend_pid()}

    @app.get("/counters")
    def counters() -> Any:
        return db.counters.as_dict()

    return app


# -- FastAPI under uvicorn ---------------------------------------------------------------------------------------


def fastapi_app() -> Any:
    """The FastAPI app, as the README writes it: ``uvicorn --factory bank:fastapi_app``."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from pgdecor.asgi import SessionMiddleware

    gc.disable()
    db = Database(_dsn(), max_size=_pool_size(), timeout=10)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with db:
            yield

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(SessionMiddleware, source=db)

    @app.post("/transfer")
    async def move(req: str, src: int, dst: int, amount: int, fault: str = "") -> Any:
        if fault == "timeout":
            await ashort_timeout()
        pause = 0.3 if fault in ("slow", "timeout") else 0.0
        balance = await atransfer(req, src, dst, amount, pause)
        if fault == "raise":
            raise PlannedError(fault)
        if fault == "status":
            return JSONResponse({"error": "refused"}, status_code=500)
        if fault == "caught":
            with suppress(psycopg.errors.DivisionByZero):
                await afail()
        if fault == "deferred":
            await abreak_at_commit()
        return {"balance": balance}

    @app.get("/whoami")
    async def whoami() -> Any:
        return {"pid": os.getpid(), "backend": await abackend_pid()}

    @app.get("/counters")
    async def counters() -> Any:
        return db.counters.as_dict()

    return app
