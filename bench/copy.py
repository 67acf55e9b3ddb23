"""COPY stubs against hand-written psycopg and asyncpg, on one throwaway server.

    python -m bench.copy                # 100,000 rows, 5 interleaved rounds
    python -m bench.copy --quick        # 2,000 rows, one round: checks that every contender still runs
    python -m bench.copy --dsn postgresql:///app --rounds 9

In: rows of the benchmark's `User` dataclass copied into a table with no index (each COPY rolled back), by a
`copy_in` stub, by psycopg's ``write_row`` loop (binary, ``set_types``), and by asyncpg's
``copy_records_to_table`` (the tuples made from the dataclasses counted in). Out: as many rows of the benchmark's
``users``, read into `User` objects, by a `copy_out` stub and by psycopg's binary COPY with ``set_types`` and
``User(*row)``.

The in side also runs "the server's floor": the same rows, encoded once before the run, sent as one write of COPY
data. No client can copy faster than that, so it bounds every ratio against it: on loopback, where the server's
own work is nearly all of a COPY's time, psycopg's ``write_row`` loop already runs at about the floor, and
the ``write_row`` goal (2x) is out of any client's reach; the floor target says how close pgdecor comes. As in ``python -m bench``, every contender runs once per round in a shuffled order, and each target
is the median of the per-round ratios of rows per second (its range, min-max, next to it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import random
import statistics
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg

from bench.run import Measure, User, asyncpg, asyncpg_params, prepared_dsn, timed, timed_async
from pgdecor import copy_in, copy_out, session
from pgdecor.testing import TemporaryServer

COLUMNS = ["id", "name", "email", "created"]
TYPES = ["int4", "text", "text", "timestamptz"]
COPY_IN = "COPY copy_users (id, name, email, created) FROM STDIN (FORMAT BINARY)"
COPY_OUT = "COPY copy_source (id, name, email, created) TO STDOUT (FORMAT BINARY)"


@copy_in("copy_users")
def load_users(rows: Iterable[User]) -> int: ...


@copy_in("copy_users")
async def aload_users(rows: Iterable[User]) -> int: ...


@copy_out("copy_source")
def export_users() -> Iterator[User]: ...


@copy_out("copy_source")
async def aexport_users() -> AsyncIterator[User]: ...


class CopyBench:
    def __init__(self, dsn: str, rows: int, stack: ExitStack) -> None:
        start = datetime(2024, 1, 1, tzinfo=timezone.utc)
        self.rows = rows
        self.users = [
            User(i, f"user {i}", None if i % 3 == 0 else f"user{i}@example.org", start + timedelta(minutes=i))
            for i in range(1, rows + 1)
        ]
        self.conn = stack.enter_context(psycopg.connect(dsn))
        self.hand = stack.enter_context(psycopg.connect(dsn))
        self.loop = asyncio.new_event_loop()
        stack.callback(self.loop.close)
        self.aconn = self.loop.run_until_complete(psycopg.AsyncConnection.connect(dsn))
        stack.callback(lambda: self.loop.run_until_complete(self.aconn.close()))
        self.ahand = self.loop.run_until_complete(psycopg.AsyncConnection.connect(dsn))
        stack.callback(lambda: self.loop.run_until_complete(self.ahand.close()))
        self.encoded = b""
        self.apg: Any = None
        if asyncpg is not None:
            self.apg = self.loop.run_until_complete(asyncpg.connect(**asyncpg_params(dsn)))
            stack.callback(lambda: self.loop.run_until_complete(self.apg.close()))

    def workloads(self) -> dict[str, dict[str, Any]]:
        n, loop = self.rows, self.loop
        copy_in_ = {
            "pgdecor": lambda: timed(n, self.pgdecor_in),
            "pgdecor async": lambda: timed_async(n, self.pgdecor_in_async, loop=loop),
            "psycopg write_row": lambda: timed(n, self.psycopg_in),
            "server floor (pre-encoded)": lambda: timed(n, self.floor_in),
        }
        if self.apg is not None:
            copy_in_["asyncpg copy_records"] = lambda: timed_async(n, self.asyncpg_in, loop=loop)
        copy_out_ = {
            "pgdecor": lambda: timed(n, self.pgdecor_out),
            "pgdecor async": lambda: timed_async(n, self.pgdecor_out_async, loop=loop),
            "psycopg + User(*row)": lambda: timed(n, self.psycopg_out),
            "psycopg async + User(*row)": lambda: timed_async(n, self.psycopg_out_async, loop=loop),
        }
        return {"in": copy_in_, "out": copy_out_}

    # COPY in: each into the empty table, rolled back

    def pgdecor_in(self) -> None:
        with self.conn.transaction(force_rollback=True), session(self.conn):
            assert load_users(self.users) == self.rows

    async def pgdecor_in_async(self) -> None:
        async with self.aconn.transaction(force_rollback=True), session(self.aconn):
            assert await aload_users(self.users) == self.rows

    def psycopg_in(self) -> None:
        with self.hand.transaction(force_rollback=True), self.hand.cursor().copy(COPY_IN) as copy:
            copy.set_types(TYPES)
            for u in self.users:
                copy.write_row((u.id, u.name, u.email, u.created))

    def encode(self) -> None:
        """The users as binary COPY data, made once (through a table, by the server) for `floor_in`."""
        with self.hand.transaction(force_rollback=True):
            with self.hand.cursor().copy(COPY_IN) as copy:
                copy.set_types(TYPES)
                for u in self.users:
                    copy.write_row((u.id, u.name, u.email, u.created))
            with self.hand.cursor().copy(COPY_IN.replace("FROM STDIN", "TO STDOUT")) as copy:
                self.encoded = b"".join(bytes(chunk) for chunk in copy)

    def floor_in(self) -> None:
        with self.hand.transaction(force_rollback=True), self.hand.cursor().copy(COPY_IN) as copy:
            copy.write(self.encoded)

    async def asyncpg_in(self) -> None:
        tx = self.apg.transaction()
        await tx.start()
        try:
            records = [(u.id, u.name, u.email, u.created) for u in self.users]
            await self.apg.copy_records_to_table("copy_users", records=records, columns=COLUMNS)
        finally:
            await tx.rollback()

    # COPY out: the table's rows, into User objects

    def pgdecor_out(self) -> None:
        with session(self.conn):
            assert len(list(export_users())) == self.rows

    async def pgdecor_out_async(self) -> None:
        async with session(self.aconn):
            assert len([u async for u in await aexport_users()]) == self.rows

    def psycopg_out(self) -> None:
        with self.hand.transaction(), self.hand.cursor().copy(COPY_OUT) as copy:
            copy.set_types(TYPES)
            assert len([User(*row) for row in copy.rows()]) == self.rows

    async def psycopg_out_async(self) -> None:
        async with self.ahand.transaction(), self.ahand.cursor().copy(COPY_OUT) as copy:
            copy.set_types(TYPES)
            assert len([User(*row) async for row in copy.rows()]) == self.rows


#: (name, workload, pgdecor's contender, the reference, the goal, what it compares)
TARGETS = [
    ("COPY in vs write_row", "in", "pgdecor", "psycopg write_row", 2.0, "rows/s vs psycopg's write_row loop"),
    (
        "write_row vs floor",
        "in",
        "psycopg write_row",
        "server floor (pre-encoded)",
        0.0,
        "the ceiling of the line above",
    ),
    ("COPY in vs floor", "in", "pgdecor", "server floor (pre-encoded)", 0.9, "rows/s vs pre-encoded COPY data"),
    ("COPY in vs asyncpg", "in", "pgdecor async", "asyncpg copy_records", 1.0, "rows/s vs copy_records_to_table"),
    ("COPY out vs psycopg", "out", "pgdecor", "psycopg + User(*row)", 1.0, "rows/s vs psycopg + dataclasses"),
    (
        "COPY out async",
        "out",
        "pgdecor async",
        "psycopg async + User(*row)",
        1.0,
        "rows/s vs psycopg async + dataclasses",
    ),
]


def run(dsn: str, rows: int, rounds: int) -> dict[str, Any]:
    with ExitStack() as stack:
        bench = CopyBench(dsn, rows, stack)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE copy_users (LIKE users)")
            conn.execute("CREATE TABLE copy_source AS SELECT * FROM users ORDER BY id LIMIT %s", [rows])
            conn.execute("VACUUM ANALYZE copy_source")
        bench.encode()
        workloads = bench.workloads()
        for contenders in workloads.values():  # warm up: catalog lookups, caches
            for fn in contenders.values():
                fn()
        runs: dict[str, dict[str, list[Measure]]] = {k: {c: [] for c in w} for k, w in workloads.items()}
        order = random.Random(7)
        for r in range(rounds):
            for key, contenders in workloads.items():
                names = list(contenders)
                order.shuffle(names)
                for name in names:
                    runs[key][name].append(contenders[name]())
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    results: dict[str, Any] = {}
    for key, by_name in runs.items():
        results[key] = {
            name: {
                "median": statistics.median(m.ops / m.wall for m in ms),
                "min": min(m.ops / m.wall for m in ms),
                "max": max(m.ops / m.wall for m in ms),
                "cpu_us_per_op": statistics.median(m.cpu / m.ops * 1e6 for m in ms),
            }
            for name, ms in by_name.items()
        }
    targets = []
    for title, key, ours, ref, goal, what in TARGETS:
        if ref not in runs[key]:
            continue
        ratios = [(a.ops / a.wall) / (b.ops / b.wall) for a, b in zip(runs[key][ours], runs[key][ref], strict=True)]
        cpu = [(a.cpu / a.ops) / (b.cpu / b.ops) for a, b in zip(runs[key][ours], runs[key][ref], strict=True)]
        ratio = statistics.median(ratios)
        targets.append(
            {
                "target": title,
                "ratio": ratio,
                "rounds": ratios,
                "cpu_ratio": statistics.median(cpu),
                "goal": goal,
                "met": ratio >= goal,
                "what": what,
            }
        )
    return {"rows": rows, "rounds": rounds, "results": results, "targets": targets}


def report(data: dict[str, Any]) -> str:
    lines = []
    titles = {"in": "COPY in", "out": "COPY out"}
    for key, contenders in data["results"].items():
        lines.append(f"\n{titles[key]}, {data['rows']:,} rows")
        lines.append(f"  {'':<28} {'rows/s (median)':>16} {'min-max':>24} {'client CPU µs/row':>18}")
        for name, c in sorted(contenders.items(), key=lambda kv: -operator.itemgetter("median")(kv[1])):
            spread = f"{c['min']:,.0f}-{c['max']:,.0f}"
            lines.append(f"  {name:<28} {c['median']:>16,.0f} {spread:>24} {c['cpu_us_per_op']:>18.2f}")
    lines.append("\ntargets (pgdecor / reference: median of per-round ratios, their range; client CPU per row)")
    for t in data["targets"]:
        mark = "-" if not t["goal"] else "met" if t["met"] else "MISSED"
        spread = f"{min(t['rounds']):.2f}-{max(t['rounds']):.2f}"
        lines.append(
            f"  {t['target']:<22} {t['ratio']:>5.2f} {spread:>10}  goal {t['goal']:<4} {mark:<7} "
            f"CPU {t['cpu_ratio']:.2f}x  {t['what']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.copy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="a server to use (default: start a throwaway one)")
    parser.add_argument("--quick", action="store_true", help="2,000 rows and one round: a smoke run")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    parser.add_argument("--json", type=Path, help="also write the results there")
    args = parser.parse_args(argv)
    rows, rounds = (2_000, 1) if args.quick else (100_000, 5)
    rounds = args.rounds or rounds
    with ExitStack() as stack:
        base = args.dsn or stack.enter_context(TemporaryServer()).dsn
        data = run(prepared_dsn(base, stack), rows, rounds)
    print(report(data))
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
