"""Where the benchmark's client and its server run: on CPUs of their own (``apart``, the default with the throwaway
server it starts: as a service and its database on two machines), on one CPU together (``together``), or where the
scheduler puts them (``none``, the default with ``--dsn``: a server of the user's is not moved).

Left to itself, the scheduler of a small machine puts a client and the server backend it waits on now on the same
CPU, now on two, and the difference swamps the ones measured: on this 2-CPU virtual machine a single call's round
trip took ~35 µs on one CPU and 130-190 µs across two, where each wait idles a CPU that the server's answer must
wake again. Pinned, every contender meets the same placement. ``apart`` keeps what a deployment has (the server
working while the client makes values of what came: batches, chunked reads); ``together`` measures what a call
costs in CPU alone, the client's and the server's added, with the least noise (±2% between runs here). Where
pinning is not possible (another system than Linux, one CPU, a server process of another user and no right to move
it), nothing is pinned and the report says so.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import psycopg

__all__ = ["PLACEMENTS", "pin"]


PLACEMENTS = ("apart", "together", "none")


def pin(dsn: str, placement: str) -> str:
    """Pin this process (and the processes it starts) to one CPU, and the server of *dsn* (its postmaster, whose new
    backends inherit it, and every process it has started) to the others, or to the same one, as *placement* (one of
    `PLACEMENTS`) says; what was done, for the report."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if placement == "none":
        return "not pinned (--pin none, the default with --dsn)"
    if sys.platform != "linux" or len(cpus) < 2:
        return "not pinned (Linux with two CPUs or more only)"
    client = cpus[:1]
    server = client if placement == "together" else cpus[1:]
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:  # its backend's parent: the postmaster
            row = conn.execute("SELECT pg_catalog.pg_backend_pid()").fetchone()
            assert row is not None
            postmaster = _parent(row[0])
        os.sched_setaffinity(postmaster, server)
        for pid in _children(postmaster):
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.sched_setaffinity(pid, server)
    except OSError as err:  # a server of another machine, or of a user whose processes this one may not move
        return f"not pinned: the server's processes could not be moved ({err})"
    os.sched_setaffinity(0, client)
    return f"{placement}: client on CPU {client[0]}, server on CPU {','.join(map(str, server))}"


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the command's name


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _parent(int(entry.name)) == parent:
                    found.append(int(entry.name))
            except (OSError, ValueError):  # ended meanwhile
                continue
    return found
