"""A `Database`'s sessions in threads: the leak guard reaps the session of a thread that died, and a thread pool's
next task never joins a session an earlier one left open (an asyncio task's are in tests/service/test_tasks.py)."""

from __future__ import annotations

import threading
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgdecor import Database, session
from tests.usercode import soak
from tests.usercode.userdb import User, add_user, get_user


def test_session_of_a_dead_thread_is_reaped_at_the_next_borrow(users: str, admin: psycopg.Connection[Any]) -> None:
    """A session its thread entered and never exited, the thread gone, is rolled back (with a warning) and its
    connection given back when the next session borrows."""
    name = "reap_thread"
    with Database(make_conninfo(users, application_name=name), min_size=0, max_size=1) as db:

        def leak() -> None:
            session(db).__enter__()  # never exited
            add_user(10, "thread")

        thread = threading.Thread(target=leak)
        thread.start()
        thread.join()
        assert soak.backends(admin, name) == {"idle in transaction": 1}
        with pytest.warns(ResourceWarning, match="its thread ended"), db.session():
            assert get_user(10) is None  # the one connection came back, rolled back
        assert db.counters.leaked == 1
        assert db.counters.borrowed == db.counters.released
        assert soak.backends(admin, name) == {"idle": 1}


@pytest.mark.parametrize("left_in", ["__enter__", "generator"])
def test_a_session_a_pool_task_left_open_is_not_joined_by_the_next_tasks(users: str, left_in: str) -> None:
    """A thread pool's task that leaves its session open (entered and never exited, or in a generator it keeps
    suspended) leaves it current in its thread; the next tasks there run outside its block: their sessions are
    their own and commit, before and after the leak guard ends the one left open."""
    kept: list[Generator[None, None, None]] = []
    with Database(users, max_size=2, leak_timeout=0.0) as db, ThreadPoolExecutor(max_workers=1) as pool:

        def rows() -> Generator[None, None, None]:
            with db.session():
                add_user(50, "left")
                yield

        def leave_open() -> None:
            if left_in == "__enter__":
                session(db).__enter__()  # never exited
                add_user(50, "left")
            else:
                kept.append(rows())
                next(kept[0])

        def write(user_id: int) -> None:
            with db.session():
                add_user(user_id, "own")

        pool.submit(leave_open).result()
        pool.submit(write, 51).result()
        with session(users):  # another connection
            assert (get_user(50), get_user(51)) == (None, User(51, "own", None))
        with pytest.warns(ResourceWarning, match="idle in transaction past the leak timeout"):
            assert db.reap() == 1
        pool.submit(write, 52).result()
        with session(users):
            assert (get_user(50), get_user(52)) == (None, User(52, "own", None))
        for gen in kept:
            pool.submit(gen.close).result()  # in its thread, whose context holds its session
        assert db.counters.as_dict() == {
            "borrowed": 3,
            "released": 3,
            "committed": 2,
            "rolled_back": 1,
            "commit_unknown": 0,
            "leaked": 1,
        }
