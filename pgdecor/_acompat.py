"""What the async sources call where the sync twins generated from them call another function.

`tools/async_to_sync.py` renames each ``a``-name here to its sync name (as psycopg's ``_acompat`` does), so that
the async sources never branch on their kind at run time.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["apause", "pause"]


def pause(seconds: float) -> None:
    """Wait *seconds*, blocking the thread."""
    time.sleep(seconds)


async def apause(seconds: float) -> None:
    """Wait *seconds*, letting the event loop run others."""
    await asyncio.sleep(seconds)
