"""Sessions in asyncio tasks: each task sees only its own (a thread's are in tests/session/test_threads.py)."""

import asyncio
from typing import Any

from pgdecor import session
from tests.usercode.userdb import aget_user


def test_each_task_sees_only_its_own_session(users: str, pg_exec: Any) -> None:
    """Concurrent asyncio tasks each use their own session and connection."""

    async def one(user_id: int) -> tuple[int, int]:
        async with session(users) as s:
            user = await aget_user(user_id)
            assert user is not None
            conn = await s.aconnection()
            return user.id, conn.info.backend_pid

    async def main() -> list[tuple[int, int]]:
        return list(await asyncio.gather(one(1), one(2), one(3)))

    results = asyncio.run(main())
    assert [r[0] for r in results] == [1, 2, 3]
    assert len({r[1] for r in results}) == 3
