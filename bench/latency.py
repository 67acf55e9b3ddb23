"""Requests through a network's latency: pgdecor, asyncpg and hand-written psycopg, in wall time and round trips.

    python -m bench.latency                  # 0.5 ms each way, 5 interleaved rounds of 40 requests per contender
    python -m bench.latency --quick          # 3 requests, one round: checks that every contender still runs
    python -m bench.latency --delay 1.0 --rounds 9 --json latency.json

Between a service and its database there are 0.2-1 ms per round trip, and a request's database time is then mostly
round trips. Every connection here goes through `bench.proxy`, a loopback TCP proxy (a process of its own) that
holds each byte back *delay* milliseconds each way and counts the round trips of every request: the times the
client waited for the server with nothing of its own in flight (see its docstring). Each request is one
transaction, committed at its end, as a service's would be: one call; five independent reads gathered in one async
session; three calls each taking its argument from the one before; a batch of 100 calls. pgdecor runs plain stubs
in sessions of a warm ``Database(conninfo, max_size=1)``, so that each request borrows from a pool as in
production; psycopg and asyncpg run on one open connection each, written as their documentation shows.

Each request is timed alone; the report gives, per contender, the median and 90th percentile of its requests' wall
time, and the round trips the proxy counted per request next to the physical minimum: a transaction needs two,
its statements sent with BEGIN in one flight and COMMIT in the next, and a call that needs the result of the one
before it one more. Every contender runs its requests once per round, in an order shuffled every round, and each
target is the median of the per-round ratios of median wall times.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import sys
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from time import perf_counter
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.proxy import ProxyProcess
from bench.run import User, aget_user, asyncpg, get_user, prepared_dsn
from pgdecor import Database
from pgdecor.testing import TemporaryServer

SQL = "SELECT * FROM get_user(%s)"
ASYNCPG_SQL = "SELECT * FROM get_user($1)"
BATCH = 100


def following(user: User | None, id: int) -> int:
    """The argument of a dependent call: made from the previous call's result."""
    return (user.id if user is not None else id) * 7919 % 100_000 + 1


def as_user(row: Any) -> User | None:
    return User(*row) if row is not None else None


@dataclass
class Workload:
    title: str
    #: Round trips the request needs at the least: its statements with BEGIN, COMMIT in a flight of its own, and
    #: one more per call that waits for the result of the one before it.
    minimum: int
    #: Each contender: one request, returning its wall time in seconds.
    contenders: dict[str, Callable[[], float]] = field(default_factory=dict)


@dataclass
class Request:
    wall: float
    round_trips: int
    turns: int


class LatencyBench:
    def __init__(self, dsn: str, stack: ExitStack) -> None:
        self.ids = random.Random(11)
        self.loop = asyncio.new_event_loop()
        stack.callback(self.loop.close)
        # pgdecor: a warm pool of one connection each, sync and async, so that each session borrows as a
        # service's does
        self.db = stack.enter_context(Database(dsn, max_size=1))
        self.adb = Database(dsn, max_size=1)
        self.loop.run_until_complete(self.adb.__aenter__())
        stack.callback(lambda: self.loop.run_until_complete(self.adb.__aexit__(None, None, None)))
        # psycopg by hand: autocommit connections with `transaction()` blocks, as its documentation advises
        self.conn = stack.enter_context(psycopg.connect(dsn, autocommit=True))
        self.aconn = self.loop.run_until_complete(psycopg.AsyncConnection.connect(dsn, autocommit=True))
        stack.callback(lambda: self.loop.run_until_complete(self.aconn.close()))
        self.apg: Any = None
        self.apg_pool: Any = None
        if asyncpg is not None:
            self.apg = self.loop.run_until_complete(asyncpg.connect(**asyncpg_params(dsn)))
            stack.callback(lambda: self.loop.run_until_complete(self.apg.close()))
            # asyncpg's way to run reads side by side: a pool, one connection each
            pooled = asyncpg_params(dsn)

            async def pool() -> Any:
                return await asyncpg.create_pool(min_size=5, max_size=5, **pooled)

            self.apg_pool = self.loop.run_until_complete(pool())
            stack.callback(lambda: self.loop.run_until_complete(self.apg_pool.close()))

    def id(self) -> int:
        return self.ids.randint(1, 100_000)

    def timed(self, fn: Callable[[], object]) -> Callable[[], float]:
        def request() -> float:
            t = perf_counter()
            fn()
            return perf_counter() - t

        return request

    def timed_async(self, fn: Callable[[], Awaitable[object]]) -> Callable[[], float]:
        async def timed() -> float:
            t = perf_counter()
            await fn()
            return perf_counter() - t

        return lambda: self.loop.run_until_complete(timed())

    def workloads(self) -> dict[str, Workload]:
        one = Workload("one call, SELECT * FROM get_user($1)", 2)
        one.contenders["pgdecor"] = self.timed(self.pgdecor_one)
        one.contenders["pgdecor async"] = self.timed_async(self.pgdecor_one_async)
        one.contenders["psycopg"] = self.timed(self.psycopg_one)
        one.contenders["psycopg async"] = self.timed_async(self.psycopg_one_async)
        one.contenders["psycopg pipeline, by hand"] = self.timed(self.psycopg_pipeline_one)

        gather = Workload("5 independent reads, asyncio.gather in one async session", 2)
        gather.contenders["pgdecor async"] = self.timed_async(self.pgdecor_gather)
        gather.contenders["psycopg async"] = self.timed_async(self.psycopg_gather)
        gather.contenders["psycopg async pipeline, by hand"] = self.timed_async(self.psycopg_pipeline_gather)

        dependent = Workload("3 dependent calls, each on the previous one's result", 4)
        dependent.contenders["pgdecor"] = self.timed(self.pgdecor_dependent)
        dependent.contenders["pgdecor async"] = self.timed_async(self.pgdecor_dependent_async)
        dependent.contenders["psycopg"] = self.timed(self.psycopg_dependent)
        dependent.contenders["psycopg async"] = self.timed_async(self.psycopg_dependent_async)
        dependent.contenders["psycopg pipeline, by hand"] = self.timed(self.psycopg_pipeline_dependent)

        many = Workload(f"a batch of {BATCH} calls, get_user.many(...)", 2)
        many.contenders["pgdecor"] = self.timed(self.pgdecor_many)
        many.contenders["pgdecor async"] = self.timed_async(self.pgdecor_many_async)
        many.contenders["psycopg executemany"] = self.timed(self.psycopg_many)
        many.contenders["psycopg async executemany"] = self.timed_async(self.psycopg_many_async)

        if self.apg is not None:
            one.contenders["asyncpg"] = self.timed_async(self.asyncpg_one)
            gather.contenders["asyncpg"] = self.timed_async(self.asyncpg_gather)
            gather.contenders["asyncpg, 5 pooled connections"] = self.timed_async(self.asyncpg_pool_gather)
            dependent.contenders["asyncpg"] = self.timed_async(self.asyncpg_dependent)
            many.contenders["asyncpg fetchmany"] = self.timed_async(self.asyncpg_many)
        return {"one": one, "gather": gather, "dependent": dependent, "many": many}

    # pgdecor: plain stubs in a session of a Database

    def pgdecor_one(self) -> None:
        with self.db.session():
            get_user(self.id())

    async def pgdecor_one_async(self) -> None:
        async with self.adb.session():
            await aget_user(self.id())

    async def pgdecor_gather(self) -> None:
        async with self.adb.session():
            await asyncio.gather(*(aget_user(self.id()) for _ in range(5)))

    def pgdecor_dependent(self) -> None:
        uid = self.id()
        with self.db.session():
            for _ in range(3):
                uid = following(get_user(uid), uid)

    async def pgdecor_dependent_async(self) -> None:
        uid = self.id()
        async with self.adb.session():
            for _ in range(3):
                uid = following(await aget_user(uid), uid)

    def pgdecor_many(self) -> None:
        argsets = [(self.id(),) for _ in range(BATCH)]
        with self.db.session():
            assert len(get_user.many(argsets)) == BATCH

    async def pgdecor_many_async(self) -> None:
        argsets = [(self.id(),) for _ in range(BATCH)]
        async with self.adb.session():
            assert len(await aget_user.many(argsets)) == BATCH

    # psycopg, by hand

    def psycopg_one(self) -> None:
        with self.conn.transaction():
            as_user(self.conn.execute(SQL, (self.id(),)).fetchone())

    async def psycopg_one_async(self) -> None:
        async with self.aconn.transaction():
            as_user(await (await self.aconn.execute(SQL, (self.id(),))).fetchone())

    async def psycopg_gather(self) -> None:
        async def read(uid: int) -> User | None:
            return as_user(await (await self.aconn.execute(SQL, (uid,))).fetchone())

        async with self.aconn.transaction():
            await asyncio.gather(*(read(self.id()) for _ in range(5)))

    # psycopg's pipeline, by hand: BEGIN sent with the first statements, COMMIT with the pipeline's closing Sync.
    # (`transaction()` inside a pipeline syncs at BEGIN, at COMMIT and at the pipeline's end: four round trips.)

    def psycopg_pipeline_one(self) -> None:
        with self.conn.pipeline() as p:
            self.conn.execute("BEGIN")
            cur = self.conn.execute(SQL, (self.id(),))
            p.sync()
            as_user(cur.fetchone())
            self.conn.execute("COMMIT")

    async def psycopg_pipeline_gather(self) -> None:
        async with self.aconn.pipeline() as p:
            await self.aconn.execute("BEGIN")
            cursors = [await self.aconn.execute(SQL, (self.id(),)) for _ in range(5)]
            await p.sync()
            for cur in cursors:
                as_user(await cur.fetchone())
            await self.aconn.execute("COMMIT")

    def psycopg_pipeline_dependent(self) -> None:
        uid = self.id()
        with self.conn.pipeline() as p:
            self.conn.execute("BEGIN")
            for _ in range(3):
                cur = self.conn.execute(SQL, (uid,))
                p.sync()
                uid = following(as_user(cur.fetchone()), uid)
            self.conn.execute("COMMIT")

    def psycopg_dependent(self) -> None:
        uid = self.id()
        with self.conn.transaction():
            for _ in range(3):
                uid = following(as_user(self.conn.execute(SQL, (uid,)).fetchone()), uid)

    async def psycopg_dependent_async(self) -> None:
        uid = self.id()
        async with self.aconn.transaction():
            for _ in range(3):
                uid = following(as_user(await (await self.aconn.execute(SQL, (uid,))).fetchone()), uid)

    def psycopg_many(self) -> None:
        params = [(self.id(),) for _ in range(BATCH)]
        with self.conn.transaction():
            cur = self.conn.cursor()
            cur.executemany(SQL, params, returning=True)
            users = []
            while True:
                users.append(as_user(cur.fetchone()))
                if not cur.nextset():
                    break
        assert len(users) == BATCH

    async def psycopg_many_async(self) -> None:
        params = [(self.id(),) for _ in range(BATCH)]
        async with self.aconn.transaction():
            cur = self.aconn.cursor()
            await cur.executemany(SQL, params, returning=True)
            users = []
            while True:
                users.append(as_user(await cur.fetchone()))
                if not cur.nextset():
                    break
        assert len(users) == BATCH

    # asyncpg: one connection, a transaction per request; it sends one statement at a time

    async def asyncpg_one(self) -> None:
        async with self.apg.transaction():
            as_user(await self.apg.fetchrow(ASYNCPG_SQL, self.id()))

    async def asyncpg_gather(self) -> None:
        # asyncpg refuses a second operation while one is in progress on a connection: the reads take turns
        async with self.apg.transaction():
            for _ in range(5):
                as_user(await self.apg.fetchrow(ASYNCPG_SQL, self.id()))

    async def asyncpg_pool_gather(self) -> None:
        # each read on a connection of its own, as asyncpg's documentation runs queries side by side (no one
        # transaction then: each read is its own)
        async def read(uid: int) -> User | None:
            async with self.apg_pool.acquire() as conn:
                return as_user(await conn.fetchrow(ASYNCPG_SQL, uid))

        await asyncio.gather(*(read(self.id()) for _ in range(5)))

    async def asyncpg_dependent(self) -> None:
        uid = self.id()
        async with self.apg.transaction():
            for _ in range(3):
                uid = following(as_user(await self.apg.fetchrow(ASYNCPG_SQL, uid)), uid)

    async def asyncpg_many(self) -> None:
        params = [(self.id(),) for _ in range(BATCH)]
        async with self.apg.transaction():
            users = [as_user(r) for r in await self.apg.fetchmany(ASYNCPG_SQL, params)]
        assert len(users) == BATCH


def asyncpg_params(dsn: str) -> dict[str, Any]:
    info = conninfo_to_dict(dsn)
    params: dict[str, Any] = {k: info[k] for k in ("host", "port", "user", "password") if info.get(k)}
    params["database"] = info.get("dbname")
    params["ssl"] = False
    return params


#: (name, workload, pgdecor's contender, the reference, the goal): wall time per request, reference / pgdecor.
TARGETS = [
    ("one call vs psycopg", "one", "pgdecor", "psycopg", 1.4),
    ("one call vs asyncpg", "one", "pgdecor async", "asyncpg", 1.0),
    ("5 gathered vs psycopg async", "gather", "pgdecor async", "psycopg async", 1.0),
    ("5 gathered vs asyncpg", "gather", "pgdecor async", "asyncpg", 3.0),
    ("5 gathered vs asyncpg's pool", "gather", "pgdecor async", "asyncpg, 5 pooled connections", 1.0),
    ("5 gathered vs pipelined", "gather", "pgdecor async", "psycopg async pipeline, by hand", 1.0),
    ("3 dependent vs psycopg", "dependent", "pgdecor", "psycopg", 1.0),
    ("3 dependent vs asyncpg", "dependent", "pgdecor async", "asyncpg", 1.0),
    ("many(100) vs executemany", "many", "pgdecor", "psycopg executemany", 1.0),
    ("many(100) vs asyncpg", "many", "pgdecor async", "asyncpg fetchmany", 1.0),
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def measure(proxy: ProxyProcess, request: Callable[[], float]) -> Request:
    before = proxy.counts()
    wall = request()
    after = proxy.counts()
    return Request(wall, after["round_trips"] - before["round_trips"], after["turns"] - before["turns"])


def round_trip_ms(proxy: ProxyProcess, dsn: str, n: int) -> float:
    """The median wall time of a bare round trip: ``SELECT 1`` on an autocommit psycopg connection."""
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SELECT 1")
        walls = []
        for _ in range(n):
            r = measure(proxy, lambda: _timed_select(conn))
            assert r.round_trips == 1, (r, proxy.counts())
            walls.append(r.wall)
    return statistics.median(walls) * 1e3


def _timed_select(conn: psycopg.Connection[Any]) -> float:
    t = perf_counter()
    conn.execute("SELECT 1").fetchone()
    return perf_counter() - t


def run(dsn: str, *, delay: float, rounds: int, requests: int) -> dict[str, Any]:
    with ExitStack() as stack:
        proxy = stack.enter_context(ProxyProcess(dsn, delay=delay))
        via = make_conninfo(
            dsn, host="127.0.0.1", hostaddr="", port=str(proxy.port), sslmode="disable", gssencmode="disable"
        )
        bench = LatencyBench(via, stack)
        workloads = bench.workloads()
        # warm up: catalog lookups, the pools' connections, and statements past psycopg's prepare threshold (5)
        for w in workloads.values():
            for fn in w.contenders.values():
                for _ in range(6):
                    fn()
        proxy.delays()
        runs: dict[str, dict[str, list[list[Request]]]] = {
            k: {c: [] for c in w.contenders} for k, w in workloads.items()
        }
        order = random.Random(7)
        for r in range(rounds):
            for key, w in workloads.items():
                names = list(w.contenders)
                order.shuffle(names)
                for name in names:
                    gc.collect()
                    runs[key][name].append([measure(proxy, w.contenders[name]) for _ in range(requests)])
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
        applied = proxy.delays()
        bare = round_trip_ms(proxy, via, max(requests, 10))
        server_version = bench.conn.info.server_version

    results: dict[str, Any] = {}
    for key, w in workloads.items():
        results[key] = {"title": w.title, "minimum_round_trips": w.minimum, "contenders": {}}
        for name, per_round in runs[key].items():
            all_requests = [q for rnd in per_round for q in rnd]
            walls = [q.wall * 1e3 for q in all_requests]
            trips = [q.round_trips for q in all_requests]
            results[key]["contenders"][name] = {
                "median_ms": statistics.median(walls),
                "p90_ms": percentile(walls, 0.9),
                "round_trips": round(statistics.median(trips)),
                "round_trips_min": min(trips),
                "round_trips_max": max(trips),
                "turns": round(statistics.median(q.turns for q in all_requests)),
                "requests": len(all_requests),
            }
    targets = []
    for title, key, ours, ref, goal in TARGETS:
        if ours not in runs[key] or ref not in runs[key]:
            continue
        ratios = [
            statistics.median(q.wall for q in b) / statistics.median(q.wall for q in a)
            for a, b in zip(runs[key][ours], runs[key][ref], strict=True)
        ]
        ratio = statistics.median(ratios)
        targets.append({"target": title, "ratio": ratio, "rounds": ratios, "goal": goal, "met": ratio >= goal})
    return {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "versions": {
            "pgdecor": version("pgdecor"),
            "psycopg": psycopg.__version__,
            "asyncpg": getattr(asyncpg, "__version__", None),
            "server": server_version,
        },
        "delay_ms": delay * 1e3,
        "applied_delay_ms": applied,
        "round_trip_ms": bare,
        "rounds": rounds,
        "requests": requests,
        "results": results,
        "targets": targets,
    }


def report(data: dict[str, Any]) -> str:
    applied = data["applied_delay_ms"]
    lines = [
        (
            f"{data['delay_ms']:.2f} ms each way (applied, median: client to server "
            f"{applied.get('client', {}).get('median', 0):.2f} ms, server to client "
            f"{applied.get('server', {}).get('median', 0):.2f} ms); one bare round trip (SELECT 1, autocommit): "
            f"{data['round_trip_ms']:.2f} ms"
        )
    ]
    for w in data["results"].values():
        floor = w["minimum_round_trips"] * data["round_trip_ms"]
        lines.append(f"\n{w['title']}: at least {w['minimum_round_trips']} round trips (~{floor:.1f} ms)")
        lines.append(f"  {'':<28} {'ms/request':>11} {'p90':>7} {'round trips':>12} {'minimum':>8} {'turns':>6}")
        for name, c in sorted(w["contenders"].items(), key=lambda kv: kv[1]["median_ms"]):
            trips = str(c["round_trips"])
            if c["round_trips_min"] != c["round_trips_max"]:
                trips += f" ({c['round_trips_min']}-{c['round_trips_max']})"
            lines.append(
                f"  {name:<28} {c['median_ms']:>11.2f} {c['p90_ms']:>7.2f} {trips:>12} "
                f"{w['minimum_round_trips']:>8} {c['turns']:>6}"
            )
    lines.append("\ntargets (reference / pgdecor, wall time per request: median of per-round ratios, their range)")
    for t in data["targets"]:
        mark = "met" if t["met"] else "MISSED"
        spread = f"{min(t['rounds']):.2f}-{max(t['rounds']):.2f}"
        lines.append(f"  {t['target']:<28} {t['ratio']:>5.2f} {spread:>10}  goal {t['goal']:<4} {mark}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="a server to use (default: start a throwaway one)")
    parser.add_argument("--delay", type=float, default=0.5, help="milliseconds added each way (default 0.5)")
    parser.add_argument("--quick", action="store_true", help="3 requests per contender and one round: a smoke run")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    parser.add_argument("--requests", type=int, help="requests per contender and round (default 40)")
    parser.add_argument("--json", type=Path, help="also write the results there")
    args = parser.parse_args(argv)
    rounds, requests = (1, 3) if args.quick else (5, 40)
    with ExitStack() as stack:
        base = args.dsn or stack.enter_context(TemporaryServer()).dsn
        data = run(
            prepared_dsn(base, stack),
            delay=args.delay / 1e3,
            rounds=args.rounds or rounds,
            requests=args.requests or requests,
        )
    print(report(data))
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
