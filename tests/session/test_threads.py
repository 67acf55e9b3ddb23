"""Sessions in threads: each thread sees only its own (an asyncio task's are in tests/session/test_tasks.py)."""

import threading

from pgdecor import NoSessionError, session
from tests.usercode.userdb import get_user


def test_each_thread_sees_only_its_own_session(users: str) -> None:
    """A session opened in one thread is invisible to another."""
    seen: list[BaseException] = []

    def worker() -> None:
        try:
            get_user(1)
        except NoSessionError as err:
            seen.append(err)

    with session(users):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert get_user(1) is not None
    assert len(seen) == 1
