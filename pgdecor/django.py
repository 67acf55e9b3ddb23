"""pgdecor in Django: stubs in the transaction of Django's own connection, atomic with the ORM's writes.

::

    from django.db import transaction
    import pgdecor.django

    def place_order(request):
        with pgdecor.django.session():        # in Django's transaction, on Django's connection
            order = Order.objects.create(...)  # the ORM's write
            reserve_stock(order.id)            # a stub's: both commit, or neither
        ...

or, for every request (``MIDDLEWARE = [..., "pgdecor.django.SessionMiddleware"]``), stubs called anywhere in a
view, without a ``with``. Django's psycopg 3 backend is needed (Django 4.2 or later, ``psycopg`` installed);
Django itself is imported only by this module.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.http import HttpRequest, HttpResponseBase

from ._errors import ArgumentError
from ._session.api import Session, open_session
from ._session.modes import DEFAULT_MODE

__all__ = ["SessionMiddleware", "session"]


def session(using: str = DEFAULT_DB_ALIAS) -> AbstractContextManager[Session]:
    """A pgdecor session on Django's connection to the database *using*, in its transaction, for a ``with`` block.

    The block is a ``transaction.atomic(using=using)`` block too: opened inside another (a view under
    ``ATOMIC_REQUESTS``, an ``atomic`` of yours), the session is a savepoint in that transaction, which commits
    or rolls back the stubs' writes with the ORM's when it ends; opened outside any, the block is the
    transaction, committed at its end. Either way, an exception leaving the block rolls back the stubs' writes
    and the ORM's made in it, and so does ``transaction.set_rollback(True)``. Django's ``on_commit`` callbacks
    run once the transaction that holds the block has committed.

    Raises `pgdecor.ArgumentError` when *using* does not reach PostgreSQL through psycopg 3 (Django's
    ``postgresql`` backend picks psycopg 3 when it is installed, psycopg2 otherwise).
    """
    caller = sys._getframe(1)
    return _session(using, f"{caller.f_code.co_filename}:{caller.f_lineno}")


class _MarkedForRollbackError(Exception):
    """Ends the pgdecor session in rollback when Django's atomic block is marked to roll back."""


@contextmanager
def _session(using: str, opened_at: str) -> Iterator[Session]:
    with transaction.atomic(using=using):
        conn = connections[using]
        raw = conn.connection
        if not isinstance(raw, psycopg.Connection):
            msg = (
                f"pgdecor.django.session(using={using!r}): DATABASES[{using!r}] is reached through "
                f"{conn.vendor}'s {type(raw).__module__}.{type(raw).__qualname__}, not a psycopg (3) Connection; use "
                f"the 'django.db.backends.postgresql' ENGINE with psycopg installed"
            )
            raise ArgumentError(msg)
        # Outside another atomic block, Django has not begun its transaction on the server yet: the session's BEGIN
        # does, and its COMMIT ends it, so it must not commit what Django was told to roll back.
        with (
            contextlib.suppress(_MarkedForRollbackError),
            open_session("pgdecor.django.session()", raw, None, opened_at, DEFAULT_MODE) as s,
        ):
            # Begun here, not at the first call: a savepoint begun lazily, inside an atomic block the code opens
            # later, would be gone when that block rolls back.
            s.connection()
            yield s
            if conn.needs_rollback:
                raise _MarkedForRollbackError


class SessionMiddleware:
    """Django middleware: each request in one `session` on the default database, so that stubs called anywhere
    in its views run in the request's transaction with the ORM's writes.

    The request's writes, the ORM's and the stubs', are committed together when the response's status is below
    500, before the response is returned to the server (a failed commit is answered 500 by Django), and rolled
    back together otherwise: Django turns a view's exception into a 500 response before any middleware sees
    it. Add it to ``MIDDLEWARE``, before the middleware whose database work belongs to the request's
    transaction. A streaming response's body is read after the session has ended: its stubs need a session
    of their own. The views' stubs are sync stubs, on Django's sync connection: the middleware is sync only.
    """

    sync_capable = True
    async_capable = False

    #: The database whose connection the requests' sessions are on (a key of ``DATABASES``).
    using = DEFAULT_DB_ALIAS

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        with _session(self.using, "pgdecor.django.SessionMiddleware"):
            response = self.get_response(request)
            if response.status_code >= 500:
                transaction.set_rollback(True, using=self.using)
        return response
