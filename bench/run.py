"""pgdecor against hand-written psycopg, asyncpg and pgbench, on one throwaway server.

    python -m bench                 # full sizes, 5 interleaved rounds; writes bench/results.json
    python -m bench --quick         # tiny sizes, one round: checks that every workload still runs
    python -m bench --profile single   # pyinstrument over pgdecor's side of one workload

Every contender runs every workload once per round, in an order shuffled every time (single calls in five slices
per round, taken in turn with the other contenders' and added up), and the report gives medians with min-max over
the rounds. Targets are ratios of pgdecor to a reference measured in the same round
(the median of the per-round ratios), never absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import operator
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import class_row

from bench.floor import LibpqFloor
from bench.pinning import PLACEMENTS, pin
from pgdecor import procedure, session
from pgdecor._limits import deadlines as _deadlines
from pgdecor._run import trace as _trace
from pgdecor.testing import TemporaryServer, find_bindir


def _optional(name: str) -> Any:
    """An optional benchmark dependency (``pip install -e '.[bench]'``), or None."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@contextmanager
def traced(on: bool) -> Iterator[None]:
    """Calls traced through OpenTelemetry's API (whose providers, no SDK configured, are the no-op ones), or not
    at all: the same as without the `otel` extra, where tracing costs one attribute test per call."""
    before = _trace.settings.on
    _trace.settings.on = on and _optional("opentelemetry") is not None
    try:
        yield
    finally:
        _trace.settings.on = before


@contextmanager
def limits_in_use(on: bool) -> Iterator[None]:
    """Calls in a process where some stub has a timeout, or a session a deadline (the calls measured have none):
    what a call without a limit pays for them is one more test."""
    before = _deadlines.armed.on
    _deadlines.armed.on = on or before
    try:
        yield
    finally:
        _deadlines.armed.on = before


asyncpg = _optional("asyncpg")
uvloop = _optional("uvloop")

HERE = Path(__file__).parent


@dataclass
class User:
    id: int
    name: str
    email: str | None
    created: datetime


@procedure
def get_user(id: int) -> User | None: ...


@procedure
def list_users(n: int) -> list[User]: ...


@procedure
def series_users(n: int) -> Iterator[User]: ...


@procedure("get_user")
async def aget_user(id: int) -> User | None: ...


@dataclass
class Body:
    title: str
    tags: list[str]
    score: int


@dataclass
class Doc:
    id: int
    body: Body


@procedure
def list_docs(n: int) -> list[Doc]: ...


@dataclass
class Sizes:
    calls: int  # single calls per measurement (a slice)
    slices: int  # single-call measurements per round, interleaved between contenders and added up
    rows: int  # rows of a bulk fetch
    stream: int  # rows of a streamed fetch
    batch: int  # calls in one batch
    batches: int  # batches per measurement
    rss_small: int  # rows streamed, small and large, for the memory check
    rss_large: int
    stubs: int  # stubs in the generated module whose import is timed
    rounds: int
    docs: int = 20_000  # rows of jsonb documents mapped onto dataclasses


FULL = Sizes(
    calls=600,
    slices=5,
    rows=100_000,
    stream=100_000,
    batch=1000,
    batches=5,
    rss_small=10_000,
    rss_large=1_000_000,
    stubs=500,
    rounds=5,
)
QUICK = Sizes(
    calls=50,
    slices=2,
    rows=500,
    stream=500,
    batch=20,
    batches=1,
    rss_small=100,
    rss_large=2000,
    stubs=20,
    rounds=1,
    docs=200,
)


@dataclass
class Measure:
    ops: int
    wall: float
    cpu: float  # client CPU seconds (this process, or pgbench's)

    def __add__(self, other: Measure) -> Measure:
        return Measure(self.ops + other.ops, self.wall + other.wall, self.cpu + other.cpu)


@dataclass
class Workload:
    title: str
    unit: str  # what ops count: "calls" or "rows"
    contenders: dict[str, Callable[[], Measure]] = field(default_factory=dict)
    #: Measurements per contender and round, taken in turn with the other contenders' and added up: a short
    #: workload's contenders then share the same stretch of the machine's ups and downs.
    slices: int = 1


def timed(ops: int, fn: Callable[[], object], *, trace: bool = False, limits: bool = False) -> Measure:
    """*fn* measured, untraced unless *trace* (see `traced`), with limits in use elsewhere if *limits* (see
    `limits_in_use`)."""
    gc.collect()  # every contender starts with the collector in the same state, not with the previous one's debt
    with traced(trace), limits_in_use(limits):
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        return Measure(ops, time.perf_counter() - wall, time.process_time() - cpu)


def timed_async(
    ops: int, fn: Callable[[], Awaitable[object]], *, loop: asyncio.AbstractEventLoop, trace: bool = False
) -> Measure:
    async def run() -> Measure:
        gc.collect()
        with traced(trace):
            cpu, wall = time.process_time(), time.perf_counter()
            await fn()
            return Measure(ops, time.perf_counter() - wall, time.process_time() - cpu)

    return loop.run_until_complete(run())


# -- the contenders ----------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, dsn: str, sizes: Sizes, stack: ExitStack) -> None:
        self.dsn = dsn
        self.sizes = sizes
        self.ids = [random.randint(1, 100_000) for _ in range(max(sizes.calls, sizes.batch))]
        # One connection per contender, opened once: the rounds measure calls, not connecting.
        self.conn = stack.enter_context(psycopg.connect(dsn))
        self.hand = stack.enter_context(psycopg.connect(dsn))
        self.loop = asyncio.new_event_loop()
        stack.callback(self.loop.close)
        self.aconn = self.loop.run_until_complete(psycopg.AsyncConnection.connect(dsn))
        stack.callback(lambda: self.loop.run_until_complete(self.aconn.close()))
        self.ahand = self.loop.run_until_complete(psycopg.AsyncConnection.connect(dsn))
        stack.callback(lambda: self.loop.run_until_complete(self.ahand.close()))
        floor_conn = self.loop.run_until_complete(psycopg.AsyncConnection.connect(dsn, autocommit=True))
        stack.callback(lambda: self.loop.run_until_complete(floor_conn.close()))
        self.floor = LibpqFloor(floor_conn, "SELECT * FROM get_user($1)", User)
        self.loop.run_until_complete(self.floor.prepare())
        self.apg: Any = None
        self.uvloop: asyncio.AbstractEventLoop | None = None
        self.uvapg: Any = None
        self.uvaconn: Any = None
        if asyncpg is not None:
            self.apg = self.loop.run_until_complete(asyncpg.connect(**asyncpg_params(dsn)))
            stack.callback(lambda: self.loop.run_until_complete(self.apg.close()))
            if uvloop is not None:
                self.uvloop = uvloop.new_event_loop()
                stack.callback(self.uvloop.close)
                self.uvapg = self.uvloop.run_until_complete(asyncpg.connect(**asyncpg_params(dsn)))
                self.uvaconn = self.uvloop.run_until_complete(psycopg.AsyncConnection.connect(dsn))
                stack.callback(lambda: self.uvloop.run_until_complete(self.uvaconn.close()))  # type: ignore[union-attr]
                stack.callback(lambda: self.uvloop.run_until_complete(self.uvapg.close()))  # type: ignore[union-attr]
        self.pgbench = _in_bindir("pgbench") or shutil.which("pgbench")  # the server's own first

    def workloads(self) -> dict[str, Workload]:
        s = self.sizes
        single = Workload("single call, get_user(id) -> User | None", "calls", slices=s.slices)
        single.contenders["pgdecor"] = lambda: timed(s.calls, self.pgdecor_single)
        single.contenders["pgdecor, OpenTelemetry no-op"] = lambda: timed(s.calls, self.pgdecor_single, trace=True)
        single.contenders["pgdecor, limits in use elsewhere"] = lambda: timed(s.calls, self.pgdecor_single, limits=True)
        single.contenders["psycopg"] = lambda: timed(s.calls, self.psycopg_single)
        single.contenders["psycopg class_row"] = lambda: timed(s.calls, self.psycopg_single_class_row)
        if self.pgbench:
            single.contenders["pgbench"] = lambda: self.run_pgbench(
                "\\set id random(1, 100000)\nSELECT * FROM get_user(:id);\n", s.calls, per_transaction=1
            )

        asingle = Workload("async single call, await aget_user(id)", "calls", slices=s.slices)
        asingle.contenders["pgdecor async"] = lambda: timed_async(
            s.calls, lambda: self.pgdecor_async(self.aconn), loop=self.loop
        )
        asingle.contenders["pgdecor async, OpenTelemetry no-op"] = lambda: timed_async(
            s.calls, lambda: self.pgdecor_async(self.aconn), loop=self.loop, trace=True
        )
        asingle.contenders["psycopg async"] = lambda: timed_async(s.calls, self.psycopg_async, loop=self.loop)
        asingle.contenders["libpq by hand (bound)"] = lambda: timed_async(
            s.calls, lambda: self.floor.calls(self.ids[: s.calls]), loop=self.loop
        )
        if self.apg is not None:
            asingle.contenders["asyncpg"] = lambda: timed_async(
                s.calls, lambda: self.asyncpg_single(self.apg), loop=self.loop
            )
        if self.uvapg is not None:
            assert self.uvloop is not None
            asingle.contenders["pgdecor async uvloop"] = lambda: timed_async(
                s.calls,
                lambda: self.pgdecor_async(self.uvaconn),
                loop=self.uvloop,  # type: ignore[arg-type]
            )
            asingle.contenders["asyncpg uvloop"] = lambda: timed_async(
                s.calls,
                lambda: self.asyncpg_single(self.uvapg),
                loop=self.uvloop,  # type: ignore[arg-type]
            )

        bulk = Workload(f"{s.rows:,}-row set, list_users(n) -> list[User]", "rows")
        bulk.contenders["pgdecor"] = lambda: timed(s.rows, self.pgdecor_bulk)
        bulk.contenders["psycopg tuples"] = lambda: timed(s.rows, self.psycopg_bulk_tuples)
        bulk.contenders["psycopg class_row"] = lambda: timed(s.rows, self.psycopg_bulk_class_row)
        if self.apg is not None:
            bulk.contenders["asyncpg records"] = lambda: timed_async(s.rows, self.asyncpg_bulk_records, loop=self.loop)
            bulk.contenders["asyncpg dataclass"] = lambda: timed_async(
                s.rows, self.asyncpg_bulk_objects, loop=self.loop
            )
        if self.pgbench:
            bulk.contenders["pgbench"] = lambda: self.run_pgbench(
                f"SELECT * FROM list_users({s.rows});\n", 3, per_transaction=s.rows
            )

        stream = Workload(f"{s.stream:,}-row stream, series_users(n) -> Iterator[User]", "rows")
        stream.contenders["pgdecor"] = lambda: timed(s.stream, self.pgdecor_stream)
        stream.contenders["psycopg tuples"] = lambda: timed(s.stream, self.psycopg_stream)

        batch = Workload(f"{s.batch:,} calls in one batch, get_user.many(...)", "calls")
        batch.contenders["pgdecor"] = lambda: timed(s.batch * s.batches, self.pgdecor_batch)
        batch.contenders["psycopg executemany"] = lambda: timed(s.batch * s.batches, self.psycopg_batch)
        if self.apg is not None:
            batch.contenders["asyncpg fetchmany"] = lambda: timed_async(
                s.batch * s.batches, self.asyncpg_batch, loop=self.loop
            )
        if self.pgbench:
            script = "\\set id random(1, 100000)\n\\startpipeline\n"
            script += "SELECT * FROM get_user(:id);\n" * s.batch + "\\endpipeline\n"
            # Each of the script's statements is prepared at its first run: enough transactions to amortise that.
            runs = max(s.batches, 20 if s.rounds > 1 else 1)
            batch.contenders["pgbench"] = lambda: self.run_pgbench(script, runs, per_transaction=s.batch)
        docs = Workload(f"{s.docs:,} rows with a jsonb document, list_docs(n) -> list[Doc]", "rows")
        docs.contenders["pgdecor"] = lambda: timed(s.docs, self.pgdecor_docs)
        docs.contenders["psycopg + Body(**doc)"] = lambda: timed(s.docs, self.psycopg_docs)
        return {"single": single, "async": asingle, "bulk": bulk, "stream": stream, "batch": batch, "json": docs}

    # pgdecor: the stubs above, in a session on a connection

    def pgdecor_single(self) -> None:
        with session(self.conn):
            for i in self.ids[: self.sizes.calls]:
                get_user(i)

    async def pgdecor_async(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with session(conn):
            for i in self.ids[: self.sizes.calls]:
                await aget_user(i)

    def pgdecor_bulk(self) -> None:
        with session(self.conn):
            assert len(list_users(self.sizes.rows)) == self.sizes.rows

    def pgdecor_docs(self) -> None:
        with session(self.conn):
            assert len(list_docs(self.sizes.docs)) == self.sizes.docs

    def pgdecor_stream(self) -> None:
        with session(self.conn):
            n = sum(1 for _ in series_users(self.sizes.stream))
        assert n == self.sizes.stream

    def pgdecor_batch(self) -> None:
        argsets = [(i,) for i in self.ids[: self.sizes.batch]]
        with session(self.conn):
            for _ in range(self.sizes.batches):
                get_user.many(argsets)

    # psycopg, written by hand as its documentation shows

    def psycopg_single(self) -> None:
        conn = self.hand
        with conn.transaction():
            cur = conn.cursor()
            for i in self.ids[: self.sizes.calls]:
                cur.execute("SELECT * FROM get_user(%s)", (i,))
                row = cur.fetchone()
                _ = User(*row) if row is not None else None

    def psycopg_single_class_row(self) -> None:
        conn = self.hand
        with conn.transaction():
            cur = conn.cursor(row_factory=class_row(User))
            for i in self.ids[: self.sizes.calls]:
                cur.execute("SELECT * FROM get_user(%s)", (i,))
                cur.fetchone()

    async def psycopg_async(self) -> None:
        conn = self.ahand
        async with conn.transaction():
            cur = conn.cursor()
            for i in self.ids[: self.sizes.calls]:
                await cur.execute("SELECT * FROM get_user(%s)", (i,))
                row = await cur.fetchone()
                _ = User(*row) if row is not None else None

    def psycopg_bulk_tuples(self) -> None:
        with self.hand.transaction():
            rows = self.hand.execute("SELECT * FROM list_users(%s)", (self.sizes.rows,)).fetchall()
        assert len(rows) == self.sizes.rows

    def psycopg_docs(self) -> None:
        with self.hand.transaction():
            rows = self.hand.execute("SELECT * FROM list_docs(%s)", (self.sizes.docs,)).fetchall()
            docs = [Doc(i, Body(**body)) for i, body in rows]
        assert len(docs) == self.sizes.docs

    def psycopg_bulk_class_row(self) -> None:
        with self.hand.transaction():
            cur = self.hand.cursor(row_factory=class_row(User))
            rows = cur.execute("SELECT * FROM list_users(%s)", (self.sizes.rows,)).fetchall()
        assert len(rows) == self.sizes.rows

    def psycopg_stream(self) -> None:
        with self.hand.transaction(), self.hand.cursor("bench") as cur:
            cur.itersize = 1000
            cur.execute("SELECT * FROM series_users(%s)", (self.sizes.stream,))
            n = sum(1 for _ in cur)
        assert n == self.sizes.stream

    def psycopg_batch(self) -> None:
        params = [(i,) for i in self.ids[: self.sizes.batch]]
        with self.hand.transaction():
            cur = self.hand.cursor()
            for _ in range(self.sizes.batches):
                cur.executemany("SELECT * FROM get_user(%s)", params, returning=True)
                out = []
                while True:
                    row = cur.fetchone()
                    out.append(User(*row) if row is not None else None)
                    if not cur.nextset():
                        break

    # asyncpg: records, and records made into the same dataclass

    async def asyncpg_single(self, conn: Any) -> None:
        async with conn.transaction():
            for i in self.ids[: self.sizes.calls]:
                row = await conn.fetchrow("SELECT * FROM get_user($1)", i)
                _ = User(*row) if row is not None else None

    async def asyncpg_bulk_records(self) -> None:
        rows = await self.apg.fetch("SELECT * FROM list_users($1)", self.sizes.rows)
        assert len(rows) == self.sizes.rows

    async def asyncpg_bulk_objects(self) -> None:
        rows = [User(*r) for r in await self.apg.fetch("SELECT * FROM list_users($1)", self.sizes.rows)]
        assert len(rows) == self.sizes.rows

    async def asyncpg_batch(self) -> None:
        params = [(i,) for i in self.ids[: self.sizes.batch]]
        async with self.apg.transaction():
            for _ in range(self.sizes.batches):
                [User(*r) for r in await self.apg.fetchmany("SELECT * FROM get_user($1)", params)]

    # pgbench: C and libpq, prepared statements, no row conversion

    def run_pgbench(self, script: str, transactions: int, *, per_transaction: int) -> Measure:
        assert self.pgbench is not None
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(script)
        script_path = Path(f.name)
        script_path.chmod(0o644)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            out = subprocess.run(
                [self.pgbench, "-n", "-M", "prepared", "-c", "1", "-t", str(transactions), "-f", f.name],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, **libpq_env(self.dsn)},
            )
        finally:
            script_path.unlink()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
        assert tps is not None, out.stdout
        ops = transactions * per_transaction
        return Measure(ops, ops / (float(tps.group(1)) * per_transaction), cpu)


def _in_bindir(name: str) -> str | None:
    try:
        path = find_bindir() / name
    except Exception:  # noqa: BLE001 - no server binaries: no pgbench
        return None
    return str(path) if path.exists() else None


def libpq_env(dsn: str) -> dict[str, str]:
    names = {
        "host": "PGHOST",
        "port": "PGPORT",
        "user": "PGUSER",
        "dbname": "PGDATABASE",
        "password": "PGPASSWORD",
        "options": "PGOPTIONS",
    }
    return {names[k]: str(v) for k, v in conninfo_to_dict(dsn).items() if k in names and v is not None}


def asyncpg_params(dsn: str) -> dict[str, Any]:
    info = conninfo_to_dict(dsn)
    params: dict[str, Any] = {k: info[k] for k in ("host", "port", "user", "password") if info.get(k)}
    if "dbname" in info:
        params["database"] = info["dbname"]
    return params


# -- the other measurements ---------------------------------------------------------------------------------------


def stream_rss(dsn: str, rows: int) -> int:
    """Peak RSS in KiB of a fresh process that streams *rows* rows through a stub."""
    code = (
        "import sys, resource; sys.path.insert(0, sys.argv[3]); from bench.run import series_users; "
        "from pgdecor import session\n"
        "with session(sys.argv[1]):\n"
        "    assert sum(1 for _ in series_users(int(sys.argv[2]))) == int(sys.argv[2])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, dsn, str(rows), str(HERE.parent)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


ROW_TEMPLATE = """
@dataclass
class Row{i}:
    id: int
    name: str
    email: str | None
    created: datetime
"""

STUB_TEMPLATE = """
@procedure("get_user")
def get_user_{i}(id: int) -> Row{row} | None: ...


@query("SELECT * FROM users WHERE id = %(id)s AND name = %(name)s")
def find_user_{i}(id: int, name: str) -> list[Row{row}]: ...
"""


def import_seconds(stubs: int, *, decorated: bool = True) -> float:
    """Seconds to import a module of *stubs* stubs over *stubs* / 10 dataclasses (pgdecor itself already imported),
    in a fresh process; with *decorated* false, the same module with the decorators doing nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = "".join(ROW_TEMPLATE.format(i=i) for i in range(max(1, stubs // 10)))
        body = "".join(STUB_TEMPLATE.format(i=i, row=i % max(1, stubs // 10)) for i in range(stubs // 2))
        header = "from dataclasses import dataclass\nfrom datetime import datetime\n\n"
        if decorated:
            header += "from pgdecor import procedure, query\n"
        else:
            header += "def procedure(*a, **k):\n    return lambda f: f\n\n\nquery = procedure\n"
        Path(tmp, "many_stubs.py").write_text(header + rows + body)
        code = (
            "import sys, time; import pgdecor; sys.path.insert(0, sys.argv[1]); "
            "t = time.perf_counter(); import many_stubs; print(time.perf_counter() - t)"
        )
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        out = subprocess.run([sys.executable, "-c", code, tmp], capture_output=True, text=True, check=True, env=env)
        return float(out.stdout)


def first_call_seconds(conn: psycopg.Connection[Any]) -> tuple[float, float]:
    """Wall seconds of a new stub's first call (resolved through the catalog) and of its second."""

    @procedure("get_user")
    def fresh(id: int) -> User | None: ...

    with session(conn):
        t0 = time.perf_counter()
        fresh(1)
        t1 = time.perf_counter()
        fresh(2)
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1


# -- running and reporting ---------------------------------------------------------------------------------------

#: (name, workload, pgdecor's contender, the reference, the goal, whether higher is better, what it compares)
TARGETS = [
    ("1. single call", "single", "pgdecor", "psycopg", 1.00, "calls/s vs hand-written psycopg + dataclass"),
    ("1. client CPU per call", "single", "pgdecor", "psycopg", 1.10, "CPU µs/call vs psycopg (lower is better)"),
    ("2. bulk list[User]", "bulk", "pgdecor", "psycopg tuples", 0.95, "rows/s vs psycopg plain tuples"),
    ("2. bulk vs class_row", "bulk", "pgdecor", "psycopg class_row", 1.0, "rows/s vs psycopg class_row"),
    ("2. bulk vs asyncpg", "bulk", "pgdecor", "asyncpg dataclass", 1.0, "rows/s vs asyncpg + dataclasses"),
    ("2. stream Iterator[User]", "stream", "pgdecor", "psycopg tuples", 0.80, "rows/s vs psycopg server-side cursor"),
    ("3. batch .many()", "batch", "pgdecor", "pgbench", 0.90, "calls/s vs pgbench pipelined"),
    ("3. batch vs executemany", "batch", "pgdecor", "psycopg executemany", 0.90, "calls/s vs psycopg executemany"),
    ("3. batch vs asyncpg", "batch", "pgdecor", "asyncpg fetchmany", 1.0, "calls/s vs asyncpg fetchmany"),
    ("4. async single call", "async", "pgdecor async", "psycopg async", 0.95, "calls/s vs psycopg AsyncConnection"),
    ("4. async vs asyncpg", "async", "pgdecor async", "asyncpg", 1.10, "calls/s vs asyncpg, both on asyncio's loop"),
    ("4. async vs asyncpg, uvloop", "async", "pgdecor async uvloop", "asyncpg uvloop", 1.0, "calls/s, both on uvloop"),
    (
        "7. tracing, no-op provider",
        "single",
        "pgdecor, OpenTelemetry no-op",
        "pgdecor",
        0.95,
        "calls/s traced through the API's no-op provider vs untraced",
    ),
    (
        "7. tracing, async",
        "async",
        "pgdecor async, OpenTelemetry no-op",
        "pgdecor async",
        0.95,
        "the same, async",
    ),
    (
        "8. no limit, limits elsewhere",
        "single",
        "pgdecor, limits in use elsewhere",
        "pgdecor",
        0.97,
        "calls/s of a stub without timeout= where other stubs have one vs none has",
    ),
    (
        "6. jsonb -> dataclass",
        "json",
        "pgdecor",
        "psycopg + Body(**doc)",
        0.8,
        "rows/s vs psycopg + dataclasses by hand",
    ),
]


def run(dsn: str, sizes: Sizes) -> dict[str, Any]:
    with ExitStack() as stack:
        bench = Bench(dsn, sizes, stack)
        workloads = bench.workloads()
        for w in workloads.values():  # warm up: connections, prepared statements, catalog lookups
            for fn in w.contenders.values():
                fn()
        runs: dict[str, dict[str, list[Measure]]] = {k: {c: [] for c in w.contenders} for k, w in workloads.items()}
        # A contender's measurement can depend on the one before it (pgbench, a process of its own, left the
        # next contender measurably faster here), so the order is shuffled for every pass, not rotated.
        order = random.Random(7)
        for r in range(sizes.rounds):
            for key, w in workloads.items():
                names = list(w.contenders)
                slices: dict[str, list[Measure]] = {name: [] for name in names}
                for _ in range(w.slices):
                    order.shuffle(names)
                    for name in names:
                        slices[name].append(w.contenders[name]())
                for name, measures in slices.items():
                    runs[key][name].append(reduce(operator.add, measures))
            print(f"round {r + 1}/{sizes.rounds} done", file=sys.stderr)
        first, steady = first_call_seconds(bench.conn)
        server_version = bench.conn.info.server_version
    small, large = stream_rss(dsn, sizes.rss_small), stream_rss(dsn, sizes.rss_large)
    imports = statistics.median(import_seconds(sizes.stubs) for _ in range(3))
    plain_imports = statistics.median(import_seconds(sizes.stubs, decorated=False) for _ in range(3))

    results: dict[str, Any] = {}
    for key, w in workloads.items():
        results[key] = {"title": w.title, "unit": w.unit, "contenders": {}}
        for name, ms in runs[key].items():
            rates = [m.ops / m.wall for m in ms]
            results[key]["contenders"][name] = {
                "median": statistics.median(rates),
                "min": min(rates),
                "max": max(rates),
                "cpu_us_per_op": statistics.median(m.cpu / m.ops * 1e6 for m in ms),
                "rates": rates,
            }
    targets = []
    for title, key, ours, ref, goal, what in TARGETS:
        if ref not in runs[key]:
            continue
        pairs = zip(runs[key][ours], runs[key][ref], strict=True)
        if "CPU" in what:
            rounds = [(a.cpu / a.ops) / (b.cpu / b.ops) for a, b in pairs]
            ratio = statistics.median(rounds)
            met = ratio <= goal
        else:
            rounds = [(a.ops / a.wall) / (b.ops / b.wall) for a, b in pairs]
            ratio = statistics.median(rounds)
            met = ratio >= goal
        cpu = [statistics.median(m.cpu / m.ops * 1e6 for m in runs[key][name]) for name in (ours, ref)]
        targets.append(
            {"target": title, "ratio": ratio, "rounds": rounds, "goal": goal, "met": met, "what": what, "cpu_us": cpu}
        )
    targets.append(
        {
            "target": "2. stream memory",
            "ratio": (large - small) / 1024,
            "goal": 8.0,
            "met": large - small <= 8 * 1024,
            "what": f"MiB more peak RSS streaming {sizes.rss_large:,} rows than {sizes.rss_small:,}",
        }
    )
    targets.append(
        {
            "target": "5. import 500 stubs",
            "ratio": imports * 500 / sizes.stubs,
            "goal": 0.5,
            "met": imports * 500 / sizes.stubs < 0.5,
            "what": f"seconds to import a module of {sizes.stubs} stubs, scaled to 500",
        }
    )
    return {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": {
            "pgdecor": version("pgdecor"),
            "psycopg": psycopg.__version__,
            "asyncpg": getattr(asyncpg, "__version__", None),
            "server": server_version,
        },
        "sizes": sizes.__dict__,
        "results": results,
        "first_call_ms": first * 1e3,
        "steady_call_ms": steady * 1e3,
        "stream_peak_rss_kib": {str(sizes.rss_small): small, str(sizes.rss_large): large},
        "import_seconds": imports,
        "import_seconds_undecorated": plain_imports,
        "targets": targets,
    }


def report(data: dict[str, Any]) -> str:
    lines = [f"{data['machine']['cpus']} CPUs: {data['machine'].get('placement', 'not pinned')}"]
    for w in data["results"].values():
        lines.append(f"\n{w['title']}")
        lines.append(f"  {'':<22} {w['unit'] + '/s (median)':>20} {'min-max':>22} {'client CPU µs/op':>17}")
        for name, c in w["contenders"].items():
            lines.append(
                f"  {name:<22} {c['median']:>20,.0f} {c['min']:>10,.0f}-{c['max']:<11,.0f} {c['cpu_us_per_op']:>17.2f}"
            )
    lines.append(
        f"\nfirst call of a new stub (catalog lookup): {data['first_call_ms']:.2f} ms; "
        f"the next: {data['steady_call_ms']:.2f} ms"
    )
    rss = data["stream_peak_rss_kib"]
    lines.append("stream peak RSS: " + ", ".join(f"{int(k):,} rows {v / 1024:.1f} MiB" for k, v in rss.items()))
    per_stub = (data["import_seconds"] - data["import_seconds_undecorated"]) / data["sizes"]["stubs"]
    lines.append(
        f"import of a module of {data['sizes']['stubs']} stubs: {data['import_seconds'] * 1e3:.0f} ms "
        f"({data['import_seconds_undecorated'] * 1e3:.0f} ms undecorated; {per_stub * 1e6:.0f} µs per decoration)"
    )
    lines.append(
        "\ntargets (pgdecor / reference, median of per-round ratios, and their range; client CPU µs/op of each)"
    )
    for t in data["targets"]:
        mark = "met" if t["met"] else "MISSED"
        spread = f"{min(t['rounds']):.2f}-{max(t['rounds']):.2f}" if "rounds" in t else ""
        cpu = "{:.2f} / {:.2f}".format(*t["cpu_us"]) if "cpu_us" in t else ""
        lines.append(
            f"  {t['target']:<26} {t['ratio']:>6.2f} {spread:>10}  goal {t['goal']:<5} {mark:<7} {cpu:>15}  {t['what']}"
        )
    return "\n".join(lines)


def prepared_dsn(base: str, stack: ExitStack) -> str:
    """A fresh database on *base*'s server holding the benchmark schema; dropped when *stack* closes."""
    name = f"pgdecor_bench_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name))
            )

    stack.callback(drop)
    dsn = make_conninfo(base, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((HERE / "schema.sql").read_text())
        conn.execute("VACUUM ANALYZE users")
    return dsn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="a server to use (default: start a throwaway one)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one round: a smoke run")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="where to write the results")
    parser.add_argument("--profile", metavar="WORKLOAD", help="profile pgdecor's side of a workload with pyinstrument")
    parser.add_argument(
        "--pin",
        choices=PLACEMENTS,
        help="client and server on CPUs of their own (the default with a throwaway server), on one, or free (the "
        "default with --dsn: a server of yours is left where it runs)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes.rounds = args.rounds
    random.seed(42)
    with ExitStack() as stack:
        base = args.dsn or stack.enter_context(TemporaryServer()).dsn
        dsn = prepared_dsn(base, stack)
        placement = pin(dsn, args.pin or ("none" if args.dsn else "apart"))
        if args.profile:
            return profile(dsn, sizes, args.profile)
        data = run(dsn, sizes)
        data["machine"]["placement"] = placement
    print(report(data))
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nwritten to {args.json}")
    return 0


def profile(dsn: str, sizes: Sizes, workload: str) -> int:
    pyinstrument = _optional("pyinstrument")
    if pyinstrument is None:
        print("--profile needs pyinstrument: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    profiler_class = pyinstrument.Profiler

    with ExitStack() as stack:
        bench = Bench(dsn, sizes, stack)
        w = bench.workloads()[workload]
        ours = next(name for name in w.contenders if name.startswith("pgdecor"))
        w.contenders[ours]()
        with profiler_class(interval=0.0002) as profiler:
            for _ in range(5):
                w.contenders[ours]()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    return 0
