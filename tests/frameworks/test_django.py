"""pgdecor.django: stubs in the transaction of Django's own connection, atomic with the ORM's writes, under
Django's request handling (its test client: middleware, views, its conversion of exceptions into 500s)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.conf import settings
from django.db import connections, models, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client, override_settings
from django.urls import path
from psycopg.conninfo import conninfo_to_dict

import pgdecor.django
from pgdecor import ArgumentError, query
from tests.fix_db import Exec

TABLES = """
CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL);
CREATE TABLE reservations (item text NOT NULL UNIQUE DEFERRABLE INITIALLY DEFERRED);
"""


@query("INSERT INTO reservations (item) VALUES (%(item)s)")
def reserve(item: str) -> None: ...


@query("SELECT count(*) FROM orders")
def orders_seen() -> int: ...


@functools.cache
def order_model() -> Any:
    """The ORM's model, defined once Django is set up."""

    class Order(models.Model):
        item: models.TextField[str, str] = models.TextField()

        class Meta:
            app_label = "shop"
            db_table = "orders"

        def __str__(self) -> str:
            return str(self.item)

    return Order


def _order(item: str, first: str) -> dict[str, int]:
    """An order written by the ORM and a reservation by a stub, in the order *first* says; what each saw."""
    order = order_model()
    if first == "orm":
        order.objects.create(item=item)
        reserve(item)
    else:
        reserve(item)
        order.objects.create(item=item)
    with connections["default"].cursor() as cur:
        cur.execute("SELECT count(*) FROM reservations")
        row = cur.fetchone()
    return {"orders_the_stub_saw": orders_seen(), "reservations_the_orm_saw": row[0] if row else -1}


def helper_view(request: HttpRequest, item: str, first: str) -> HttpResponse:
    with pgdecor.django.session():
        seen = _order(item, first)
        if request.GET.get("fail"):
            raise RuntimeError(item)
        if request.GET.get("set_rollback"):
            transaction.set_rollback(True)
    return JsonResponse(seen)


@transaction.atomic
def atomic_view(request: HttpRequest, item: str, first: str) -> HttpResponse:
    with pgdecor.django.session():
        seen = _order(item, first)
    if request.GET.get("fail"):  # after the session's block, in the view's own transaction
        raise RuntimeError(item)
    return JsonResponse(seen)


def middleware_view(request: HttpRequest, item: str, first: str) -> HttpResponse:
    seen = _order(item, first)  # no `with`: the request's session
    if request.GET.get("twice"):
        reserve(item)  # the COMMIT fails
    if request.GET.get("fail"):
        raise RuntimeError(item)
    return JsonResponse(seen, status=int(request.GET.get("status", 200)))


def _undone(item: str, first: str) -> None:
    with pgdecor.django.session():  # inside the request's (the middleware's)
        _order(item, first)
        raise RuntimeError(item)


def nested_view(request: HttpRequest, item: str, first: str) -> HttpResponse:
    order_model().objects.create(item=f"{item}-before")
    try:
        _undone(item, first)
    except RuntimeError:
        if request.GET.get("fail"):
            raise
    return JsonResponse({})


urlpatterns = [
    path("nested/<str:item>/<str:first>", nested_view),
    path("helper/<str:item>/<str:first>", helper_view),
    path("atomic/<str:item>/<str:first>", atomic_view),
    path("middleware/<str:item>/<str:first>", middleware_view),
]


def _configure() -> None:
    if not settings.configured:
        settings.configure(
            DATABASES={
                "default": {"ENGINE": "django.db.backends.postgresql", "NAME": "postgres"},
                "lite": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
            },
            INSTALLED_APPS=[],
            MIDDLEWARE=[],
            ROOT_URLCONF=__name__,
            ALLOWED_HOSTS=["testserver"],
            USE_TZ=True,
            SECRET_KEY="not-a-secret-of-anything",
        )
        django.setup()


@pytest.fixture
def client(pg_dsn: str, pg_exec: Exec) -> Iterator[Client]:
    """Django's test client, its default database the test's schema (the DSN of the fixtures, read into
    ``DATABASES``), holding the tables of an order and of a reservation."""
    _configure()
    params = conninfo_to_dict(pg_dsn)
    db = connections["default"]
    db.close()
    db.settings_dict.update(
        NAME=params.get("dbname", ""),
        HOST=params.get("host", ""),
        PORT=params.get("port", ""),
        USER=params.get("user", ""),
        OPTIONS={"options": params.get("options", "")},
    )
    pg_exec(TABLES)
    try:
        yield Client(raise_request_exception=False)
    finally:
        db.close()


def stored(pg_exec: Exec) -> tuple[list[str], list[str]]:
    """The items of the orders and of the reservations committed."""
    orders = [str(r[0]) for r in pg_exec("SELECT item FROM orders ORDER BY id")]
    return orders, [str(r[0]) for r in pg_exec("SELECT item FROM reservations ORDER BY item")]


@pytest.mark.parametrize("first", ["orm", "stub"])
def test_a_view_mixing_orm_and_stub_writes_commits_both_or_neither(client: Client, pg_exec: Exec, first: str) -> None:
    """Inside ``pgdecor.django.session()`` the ORM and the stubs share one connection and one transaction (each
    sees the other's uncommitted write), whichever writes first: both commit with the block, and both roll back
    when the view raises in it or marks it ``set_rollback(True)``."""
    answer = client.get(f"/helper/kept/{first}")
    assert answer.status_code == 200
    assert answer.json() == {"orders_the_stub_saw": 1, "reservations_the_orm_saw": 1}
    assert client.get(f"/helper/raised/{first}?fail=1").status_code == 500
    assert client.get(f"/helper/marked/{first}?set_rollback=1").status_code == 200
    assert stored(pg_exec) == (["kept"], ["kept"])


@pytest.mark.parametrize("first", ["orm", "stub"])
def test_inside_an_atomic_view_the_session_commits_nothing_itself(client: Client, pg_exec: Exec, first: str) -> None:
    """In a view's own ``atomic`` (as ``ATOMIC_REQUESTS`` makes it), the session is a savepoint: the view's
    transaction decides, and a view that raises after the session's block rolls back the stubs' writes too."""
    assert client.get(f"/atomic/kept/{first}").status_code == 200
    assert client.get(f"/atomic/raised/{first}?fail=1").status_code == 500
    assert stored(pg_exec) == (["kept"], ["kept"])


@pytest.mark.parametrize("first", ["orm", "stub"])
def test_the_middleware_commits_a_requests_writes_together_only_below_500(
    client: Client, pg_exec: Exec, first: str
) -> None:
    """Under ``pgdecor.django.SessionMiddleware`` a view calls stubs without a ``with``, in the request's
    transaction with the ORM: committed together when the response is below 500; a view that raises (answered
    500 by Django) or answers 503 itself rolls back both, and a COMMIT that fails is answered 500."""
    with override_settings(MIDDLEWARE=["pgdecor.django.SessionMiddleware"]):
        answer = client.get(f"/middleware/kept/{first}")
        assert answer.json() == {"orders_the_stub_saw": 1, "reservations_the_orm_saw": 1}
        assert client.get(f"/middleware/client-error/{first}?status=409").status_code == 409
        assert client.get(f"/middleware/raised/{first}?fail=1").status_code == 500
        assert client.get(f"/middleware/unavailable/{first}?status=503").status_code == 503
        assert client.get(f"/middleware/twice/{first}?twice=1").status_code == 500
    assert stored(pg_exec) == (["kept", "client-error"], ["client-error", "kept"])


@pytest.mark.parametrize("first", ["orm", "stub"])
def test_a_session_inside_the_requests_undoes_its_block_alone(client: Client, pg_exec: Exec, first: str) -> None:
    """``pgdecor.django.session()`` in a view under the middleware: a block that raises undoes the writes made
    in it, ORM's and stubs' (its savepoint), and the rest of the request commits, or rolls back with the view."""
    with override_settings(MIDDLEWARE=["pgdecor.django.SessionMiddleware"]):
        assert client.get(f"/nested/caught/{first}").status_code == 200
        assert client.get(f"/nested/raised/{first}?fail=1").status_code == 500
    assert stored(pg_exec) == (["caught-before"], [])


def test_a_database_not_reached_through_psycopg_3_is_refused(client: Client) -> None:
    """A ``DATABASES`` entry of another engine gets an error naming it and what to use."""
    refused = r"DATABASES\['lite'\] is reached through sqlite's sqlite3\.Connection, not a psycopg \(3\) Connection"
    with pytest.raises(ArgumentError, match=refused), pgdecor.django.session("lite"):
        pass  # pragma: no cover
