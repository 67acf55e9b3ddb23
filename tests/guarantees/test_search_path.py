"""pgdecor's own SQL means the same whatever the search_path (the CVE-2018-1058 pattern): a role that can CREATE in a
schema on the application's path plants look-alikes of the operators, functions and types that SQL could reach by
name, and none of them runs while the application's role resolves and calls stubs, checks them or generates them."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pgdecor import Database, check, procedure, query, session
from pgdecor._cli.generate import generate

#: The application's schema, made by its own role. Its functions name their objects on a path of their own, as
#: careful schemas do, so that what a planted object could reach there is the application's business, not pgdecor's.
APP_SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE price AS (amount numeric(10, 2), currency text);
CREATE TABLE orders (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item text NOT NULL, price price NOT NULL, mood mood NOT NULL
);
CREATE FUNCTION add_order(item text, price price, mood mood) RETURNS orders LANGUAGE sql
    SET search_path = pg_catalog, app
    AS $$ INSERT INTO app.orders (item, price, mood) VALUES (item, price, mood) RETURNING * $$;
CREATE FUNCTION add_orders(items text[], prices price[], moods mood[]) RETURNS SETOF orders LANGUAGE sql
    SET search_path = pg_catalog, app
    AS $$ INSERT INTO app.orders (item, price, mood)
        SELECT items[i], prices[i], moods[i] FROM generate_subscripts(items, 1) i ORDER BY i RETURNING * $$;
CREATE FUNCTION orders_by_ids(ids bigint[]) RETURNS SETOF orders LANGUAGE sql STABLE
    SET search_path = pg_catalog, app
    AS $$ SELECT * FROM app.orders o WHERE o.id = ANY (ids) ORDER BY o.id $$;
CREATE FUNCTION order_count(moods mood[], since int DEFAULT 0) RETURNS bigint LANGUAGE sql STABLE
    SET search_path = pg_catalog, app
    AS $$ SELECT count(*) FROM app.orders o WHERE o.mood = ANY (moods) AND o.id > since $$;
"""

#: Operators planted as (name, left type, right type, result type). pg_catalog has no operator for an oid and an
#: integer (it casts one side), so those win on any path; the others are pg_catalog's own, which win only where
#: the path puts pg_catalog after the shared schema.
OPERATORS = [
    ("=", "oid", "int2", "boolean"),
    ("=", "oid", "int4", "boolean"),
    ("=", "oid", "int8", "boolean"),
    ("<>", "oid", "int4", "boolean"),
    ("=", "oid", "oid", "boolean"),
    ("<>", "oid", "oid", "boolean"),
    ("=", "name", "name", "boolean"),
    ("=", "name", "text", "boolean"),
    ("=", "text", "text", "boolean"),
    ("=", '"char"', '"char"', "boolean"),
    ("=", "int2", "int2", "boolean"),
    ("=", "int2", "int4", "boolean"),
    (">", "int2", "int4", "boolean"),
    ("||", "text", "text", "text"),
    (">=", "pg_lsn", "pg_lsn", "boolean"),
]

#: Functions planted as (signature, result type, what it returns), each a closer or equal match for a call
#: pgdecor's SQL could make: the composite one rewrites the value it is given.
FUNCTIONS = [
    (
        "jsonb_populate_record(app.price, jsonb)",
        "app.price",
        "ROW((pg_catalog.jsonb_populate_record($1, $2)).amount * 100, 'MALLORY')::app.price",
    ),
    ("jsonb_populate_record(anyelement, jsonb)", "anyelement", "pg_catalog.jsonb_populate_record($1, $2)"),
    ("format_type(oid, text)", "text", "pg_catalog.format_type($1, NULL)"),
    ("format_type(oid, int4)", "text", "pg_catalog.format_type($1, $2)"),
    ("quote_ident(name)", "text", "pg_catalog.quote_ident($1)"),
    ("obj_description(oid, text)", "text", "pg_catalog.obj_description($1, $2::name)"),
    ("pg_function_is_visible(oid)", "boolean", "pg_catalog.pg_function_is_visible($1)"),
    ("pg_get_function_identity_arguments(oid)", "text", "pg_catalog.pg_get_function_identity_arguments($1)"),
    ("pg_backend_pid()", "int4", "pg_catalog.pg_backend_pid()"),
    ("set_config(text, text, boolean)", "text", "pg_catalog.set_config($1, $2, $3)"),
    ("pg_current_wal_insert_lsn()", "pg_lsn", "pg_catalog.pg_current_wal_insert_lsn()"),
    ("pg_last_wal_replay_lsn()", "pg_lsn", "pg_catalog.pg_last_wal_replay_lsn()"),
    ("pg_is_in_recovery()", "boolean", "pg_catalog.pg_is_in_recovery()"),
]

#: Aggregates planted for the types pgdecor's SQL aggregates (pg_catalog's array_agg takes any type: these win).
AGGREGATES = ["text", "int8", "name", "oid"]

#: Types planted (domains over pg_catalog's, checked by a planted function), which win only where the path puts
#: pg_catalog after the shared schema.
TYPES = ["text", "int8", "int4", "oid", "jsonb", "pg_lsn", "regtype", "regclass", "regproc", "name"]

#: The planting role's SQL runs on a path of its own: its look-alikes reach pg_catalog's objects, not each other.
PLANT = """
SET search_path = pg_catalog;
CREATE TABLE public.planted_log (what text NOT NULL, ran_as name NOT NULL);
GRANT INSERT ON public.planted_log TO PUBLIC;
-- Notes that *what* ran, and as whom; in a read-only transaction, which cannot note it, it fails saying so.
CREATE FUNCTION public.planted(what text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF current_setting('transaction_read_only') = 'on' THEN
        RAISE EXCEPTION 'planted % ran as %', what, current_user;
    END IF;
    INSERT INTO public.planted_log VALUES (what, current_user);
    RETURN true;
END $$;
"""


def plant_sql() -> str:
    """The planting role's SQL: every look-alike, each noting that it ran before doing what the real one does."""
    statements = [PLANT]
    for n, (op, left, right, result) in enumerate(OPERATORS):
        what = f"operator {op}({left}, {right})"
        statements.append(
            f"CREATE FUNCTION public.planted_op{n}({left}, {right}) RETURNS {result} LANGUAGE plpgsql "
            f"SET search_path = pg_catalog AS $$ BEGIN PERFORM public.planted('{what}'); "
            f"RETURN $1 OPERATOR(pg_catalog.{op}) $2; END $$;\n"
            f"CREATE OPERATOR public.{op} (LEFTARG = {left}, RIGHTARG = {right}, FUNCTION = public.planted_op{n});"
        )
    for signature, result, body in FUNCTIONS:
        statements.append(
            f"CREATE FUNCTION public.{signature} RETURNS {result} LANGUAGE plpgsql SET search_path = pg_catalog "
            f"AS $$ BEGIN PERFORM public.planted('function {signature}'); RETURN {body}; END $$;"
        )
    statements.append(
        "CREATE FUNCTION public.jsonb_array_elements(jsonb) RETURNS SETOF jsonb LANGUAGE plpgsql "
        "SET search_path = pg_catalog AS $$ BEGIN PERFORM public.planted('function jsonb_array_elements(jsonb)'); "
        "RETURN QUERY SELECT * FROM pg_catalog.jsonb_array_elements($1); END $$;"
    )
    statements.extend(
        f"CREATE FUNCTION public.planted_append_{tp}({tp}[], {tp}) RETURNS {tp}[] LANGUAGE plpgsql "
        f"SET search_path = pg_catalog AS $$ BEGIN PERFORM public.planted('aggregate array_agg({tp})'); "
        f"RETURN pg_catalog.array_append($1, $2); END $$;\n"
        f"CREATE AGGREGATE public.array_agg({tp}) (SFUNC = public.planted_append_{tp}, STYPE = {tp}[]);"
        for tp in AGGREGATES
    )
    statements.extend(
        f"CREATE DOMAIN public.{tp} AS pg_catalog.{tp} CHECK (public.planted('type {tp}'));" for tp in TYPES
    )
    return "\n".join(statements)


#: How many look-alikes are planted.
PLANTED = len(OPERATORS) + len(FUNCTIONS) + 1 + len(AGGREGATES) + len(TYPES)


class Mood(str, Enum):
    SAD = "sad"
    OK = "ok"
    HAPPY = "happy"


@dataclass
class Price:
    amount: Decimal
    currency: str


@dataclass
class Order:
    id: int
    item: str
    price: Price
    mood: Mood


@dataclass
class Sold:
    price: Price
    mood: Mood


@procedure
def add_order(item: str, price: Price, mood: Mood) -> Order: ...


@procedure
def add_orders(items: list[str], prices: list[Price], moods: list[Mood]) -> list[Order]: ...


@procedure(readonly=True)
def orders_by_ids(ids: list[int]) -> list[Order]: ...


@procedure(readonly=True)
def order_count(moods: list[Mood]) -> int: ...


@query("SELECT o.price, o.mood FROM app.orders o ORDER BY o.id", readonly=True)
def sold() -> list[Sold]: ...


@dataclass(frozen=True)
class Planted:
    """A database where the application's role works and another role planted look-alikes on its path."""

    #: The application role's conninfo, and the same as the replica's (another application_name).
    dsn: str
    replica: str
    #: A superuser's connection to the database, to look at it from the side.
    admin: psycopg.Connection[Any]

    def ran(self) -> list[tuple[str, str]]:
        """Which planted objects ran, as whom."""
        return self.admin.execute("SELECT what, ran_as::text FROM public.planted_log ORDER BY 1").fetchall()


#: The paths under attack: the application's schema, then one every role can CREATE in (public, before PostgreSQL
#: 15) with pg_catalog searched first, implicitly; and the same with pg_catalog listed after it.
PATHS = ["app,public", "app,public,pg_catalog"]


@pytest.fixture(params=PATHS)
def planted(request: pytest.FixtureRequest, pg_server_dsn: str) -> Iterator[Planted]:
    """A database of its own: the application's schema made by its role, the look-alikes by another, and the
    application's conninfo with the path of the test's parameter."""
    tag = uuid.uuid4().hex[:10]
    database, app, mallory = f"pgdecor_sp_{tag}", f"pgdecor_app_{tag}", f"pgdecor_mallory_{tag}"
    password = uuid.uuid4().hex
    with psycopg.connect(pg_server_dsn, autocommit=True) as server:
        for role in (app, mallory):
            server.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        superuser = make_conninfo(pg_server_dsn, dbname=database)
        as_app = make_conninfo(superuser, user=app, password=password)
        with psycopg.connect(superuser, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE SCHEMA app AUTHORIZATION {0}; GRANT USAGE ON SCHEMA app TO PUBLIC; ").format(
                    sql.Identifier(app)
                )
                + sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(mallory))
            )
            with psycopg.connect(make_conninfo(as_app, options="-c search_path=app"), autocommit=True) as conn:
                conn.execute(APP_SCHEMA.encode())
            with psycopg.connect(make_conninfo(superuser, user=mallory, password=password), autocommit=True) as conn:
                conn.execute(plant_sql().encode())
            dsn = make_conninfo(as_app, options=f"-c search_path={request.param}")
            yield Planted(dsn, make_conninfo(dsn, application_name="replica"), admin)
    finally:
        with psycopg.connect(pg_server_dsn, autocommit=True) as server:
            server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            for role in (app, mallory):
                server.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_stubs_resolve_and_run_without_any_planted_object(planted: Planted, figures: Callable[[str], None]) -> None:
    """Resolving stubs of every kind of argument (integers, enums, composites and arrays of them), describing the
    types of their results, probing connections and handing out and waiting on commit tokens run none of the
    look-alikes, and store what was given."""
    tea = Price(Decimal("10.00"), "EUR")
    with Database(planted.dsn, replica=planted.replica) as db:
        with db.session() as writer:
            order = add_order("tea", tea, Mood.OK)
            more = add_orders(["cake", "jam"], [Price(Decimal("3.50"), "EUR"), Price(Decimal(2), "CHF")],
                              [Mood.HAPPY, Mood.SAD])  # fmt: skip
        assert writer.commit_token is not None
        with db.session(after=writer.commit_token):
            assert orders_by_ids([order.id, more[1].id]) == [order, more[1]]
            assert order_count([Mood.HAPPY, Mood.SAD]) == 2
            assert [s.price for s in sold()] == [tea, Price(Decimal("3.50"), "EUR"), Price(Decimal("2.00"), "CHF")]
    with psycopg.connect(planted.dsn, autocommit=True) as conn, session(conn):  # a connection pgdecor probes
        assert order_count([Mood.OK]) == 1
    assert order == Order(order.id, "tea", tea, Mood.OK)
    stored = planted.admin.execute("SELECT item, (price).amount, (price).currency FROM app.orders ORDER BY id")
    assert stored.fetchall() == [
        ("tea", Decimal("10.00"), "EUR"),
        ("cake", Decimal("3.50"), "EUR"),
        ("jam", Decimal("2.00"), "CHF"),
    ]
    ran = planted.ran()
    figures(f"{PLANTED} look-alikes planted, {len({what for what, _ in ran})} ran")
    assert ran == []


def test_check_and_generate_run_without_any_planted_object(planted: Planted) -> None:
    """`pgdecor check` and `pgdecor generate` read the catalog (functions, types, enum labels, attributes, nullable
    columns) without running any of the look-alikes."""
    assert check([sys.modules[__name__]], planted.dsn) == []
    text, skipped = generate(planted.dsn, "app")
    assert skipped == []
    assert '"""Composite type app.price."""\n\n    amount: Decimal | None\n    currency: str | None\n' in text
    assert '"""Enum type app.mood."""\n\n    SAD = "sad"\n    OK = "ok"\n    HAPPY = "happy"\n' in text
    assert "    mood: Mood | None,\n) -> Orders | None:\n" in text
    assert planted.ran() == []
