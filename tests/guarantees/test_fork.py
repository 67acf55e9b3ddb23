"""Fork safety: no connection is ever used by two processes, and a child never ends its parent's connections."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from psycopg_pool import ConnectionPool

from pgdecor import Database, NoSessionError, query, session
from pgdecor._limits.deadlines import watchdog
from pgdecor._session.life import Life
from pgdecor._sources import guard as guard_module
from tests.usercode.userdb import count_users
from tests.utils import servers

pytestmark = pytest.mark.slow


@query("SELECT pg_backend_pid()")
def backend_pid() -> int: ...


def in_child(check: Callable[[], int]) -> int:
    """Run *check* in a forked child; return its exit status (its result, or 99 if it raised)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            code = check()
        except BaseException:  # noqa: BLE001 - the child says what went wrong, and exits
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


# Python 3.12 and later warn of any fork while a thread runs: what this test does on purpose.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_child_forked_while_a_thread_watches_a_call_watches_its_own(pg_dsn: str) -> None:
    """A child forked while a thread of its parent held the deadlines watchdog's lock (watching a call, or the check
    of a connection) has a watchdog of its own: its first call through a cursor, which the watchdog watches, does not
    wait forever for a lock no thread of the child will release."""

    @query("SELECT 2")
    def two() -> int: ...

    def child() -> int:
        with Database(pg_dsn, max_size=1) as db:
            with db.session():
                backend_pid()
            with db.session():  # handed out owing its check, which a statement new on it pays: watched
                return 0 if two() == 2 else 1

    held, forked = threading.Event(), threading.Event()

    def watching() -> None:  # a thread of the parent, holding the lock as it watches
        with watchdog._cond:
            held.set()
            forked.wait()

    thread = threading.Thread(target=watching)
    thread.start()
    held.wait()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            code = child()
        finally:
            os._exit(code)
    forked.set()
    thread.join()
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the child never made its call")
    assert os.waitstatus_to_exitcode(done[1]) == 0


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_child_forked_while_a_thread_ends_a_session_forgets_every_session_of_its_parent(pg_dsn: str) -> None:
    """A child forked while a thread of its parent ends a session (committed, not yet given back) forgets it with
    the others open at the fork: nothing raises in the fork's handlers, and the child's own sessions work."""
    unraisable: list[str] = []
    hook = sys.unraisablehook
    sys.unraisablehook = lambda info: unraisable.append(repr(info.exc_value))
    tracked, leave = threading.Event(), threading.Event()

    def one_session() -> None:
        with db.session():
            backend_pid()
            tracked.set()
            leave.wait()

    def child() -> int:
        with db.session():
            backend_pid()
        return 1 if unraisable else 0

    try:
        with Database(pg_dsn, max_size=2) as db:
            ending = threading.Thread(target=one_session)
            ending.start()
            tracked.wait()
            with guard_module._lock:  # the thread ends its session, then waits to take it off its guard
                leave.set()
                while not any(
                    getattr(s, "_life", None) is Life.ENDED
                    for g in list(guard_module._guards)
                    for s in g._live.values()
                ):
                    time.sleep(0.001)
                status = in_child(child)
            ending.join()
    finally:
        sys.unraisablehook = hook
    assert status == 0


def test_database_opened_before_fork_reopens_in_the_child(users: str) -> None:
    """A child's sessions get connections of their own; the parent's, and its open session, are untouched."""
    with Database(users, min_size=2, max_size=2) as db:
        with db.session():
            parent_backend = backend_pid()

            def child() -> int:
                try:
                    backend_pid()  # the session open at the fork is the parent's
                except NoSessionError:
                    pass
                else:
                    return 1
                with db.session():
                    mine = backend_pid()
                    users_seen = count_users()
                db.pool.close()  # the child's own pool
                return 0 if mine != parent_backend and users_seen == 3 else 2

            assert in_child(child) == 0
            assert backend_pid() == parent_backend  # still the same, working connection
        seen = set()
        for _ in range(4):  # the pool's other connection, idle at the fork, works too
            with db.session():
                seen.add(backend_pid())
    assert len(seen) == 2
    assert db.counters.as_dict() == {
        "borrowed": 5,
        "released": 5,
        "committed": 5,
        "rolled_back": 0,
        "commit_unknown": 0,
        "leaked": 0,
    }


def test_a_lazy_object_that_fails_to_evaluate_does_not_stop_the_child_from_ending_the_parents_sessions(
    users: str,
) -> None:
    """A process holding lazy proxies whose evaluation raises (Django's settings and storages, in an app that
    forks its workers after loading Django): the child still ends the sessions open at the fork."""
    from django.core.exceptions import ImproperlyConfigured
    from django.utils.functional import SimpleLazyObject

    def misconfigured() -> object:
        raise ImproperlyConfigured("as Django's staticfiles storage without STATIC_URL")

    lazy = SimpleLazyObject(misconfigured)

    def child() -> int:
        try:
            backend_pid()
        except NoSessionError:
            return 0
        return 1

    with Database(users, min_size=1, max_size=1) as db, db.session():
        backend_pid()
        assert in_child(child) == 0
    assert lazy is not None


def test_users_pool_opened_before_fork_is_refused_in_the_child_and_closing_it_there_is_harmless(users: str) -> None:
    """A pool of the user's cannot be reopened by pgdecor: a session on it in the child says what to do, and even
    closing it in the child leaves the parent's connections working."""
    with ConnectionPool(users, min_size=2, max_size=2, open=True) as pool:
        with session(pool):
            assert count_users() == 3

        def child() -> int:
            try:
                with session(pool):
                    count_users()
            except NoSessionError as err:
                if "opened before this process was forked" not in str(err):
                    return 1
            else:
                return 2
            pool.close()  # closing the inherited connections must not reach the server
            return 0

        assert in_child(child) == 0
        for _ in range(3):
            with session(pool):
                assert count_users() == 3


def test_gunicorn_preload_never_shares_a_connection_between_workers(pg_server_dsn: str) -> None:
    """The README's Flask app under ``gunicorn --preload`` (the Database opened before the workers fork): every
    request is served, and each backend serves one worker process only."""
    with (
        servers.serve("gunicorn", pg_server_dsn, preload=True, workers=2, pool=2) as port,
        ThreadPoolExecutor(8) as clients,
    ):
        answers = list(clients.map(lambda _: servers.request(port, "GET", "/whoami"), range(160)))
    assert [status for status, _ in answers] == [200] * 160
    owners: dict[int, set[int]] = {}
    for _, body in answers:
        owners.setdefault(body["backend"], set()).add(body["pid"])
    assert len({body["pid"] for _, body in answers}) == 2  # both workers served
    assert all(len(pids) == 1 for pids in owners.values()), owners


@query("SELECT pg_backend_pid()")
async def abackend_pid() -> int: ...


def test_async_database_opened_before_fork_reopens_in_the_child(users: str) -> None:
    """An async Database opened (on a loop that is not running at the fork) serves a child's sessions from a pool
    of the child's own, and the parent's pool still works afterwards."""
    loop = asyncio.new_event_loop()
    db = Database(users, min_size=1, max_size=1)
    loop.run_until_complete(db.__aenter__())
    try:

        async def one() -> int:
            async with db.session():
                return await abackend_pid()

        parent_backend = loop.run_until_complete(one())

        def child() -> int:
            mine = asyncio.new_event_loop().run_until_complete(one())
            return 0 if mine != parent_backend else 1

        assert in_child(child) == 0
        assert loop.run_until_complete(one()) == parent_backend
    finally:
        loop.run_until_complete(db.__aexit__(None, None, None))
        loop.close()
