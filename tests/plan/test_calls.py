"""Every function a stub can name is callable, on schemas shaped like real extensions': a message queue whose batch
functions take jsonb[] (as pgmq's), a job queue deferring arrays of a composite type, from functions and from
`@query` casts (as procrastinate's), and maintenance procedures that COMMIT as they go (as pg_partman's)."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import psycopg
import pytest

from pgdecor import DEFAULT, ArgumentError, NoSessionError, procedure, query, session, transaction
from tests.fix_db import Exec

QUEUE = """
CREATE TABLE queue_messages (msg_id bigserial PRIMARY KEY, queue text NOT NULL, message jsonb, headers jsonb);
CREATE TABLE batches (id serial PRIMARY KEY, docs jsonb[]);
CREATE FUNCTION send_batch(queue_name text, msgs jsonb[], delay integer DEFAULT 0) RETURNS SETOF bigint
LANGUAGE sql AS $$
    INSERT INTO queue_messages (queue, message)
    SELECT queue_name, u.m FROM unnest(msgs) WITH ORDINALITY AS u (m, n) ORDER BY u.n
    RETURNING msg_id
$$;
CREATE FUNCTION send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer DEFAULT 0)
RETURNS SETOF bigint LANGUAGE sql AS $$
    INSERT INTO queue_messages (queue, message, headers)
    SELECT queue_name, u.m, u.h FROM unnest(msgs, headers) WITH ORDINALITY AS u (m, h, n) ORDER BY u.n
    RETURNING msg_id
$$;
CREATE FUNCTION send_batch(queue_name text, msgs jsonb[], delay timestamptz) RETURNS SETOF bigint
LANGUAGE sql AS $$ SELECT send_batch(queue_name, msgs, 0) $$;
CREATE FUNCTION messages(queue_name text) RETURNS jsonb[] LANGUAGE sql
AS $$ SELECT array_agg(message ORDER BY msg_id) FROM queue_messages WHERE queue = queue_name $$;
CREATE FUNCTION documents_text(docs json[]) RETURNS text LANGUAGE sql AS $$ SELECT docs::text $$;
"""

JOBS = """
CREATE TYPE job_status AS ENUM ('todo', 'doing', 'succeeded', 'failed');
CREATE TYPE job_to_defer AS (
    queue_name varchar, task_name varchar, priority integer, lock text, args jsonb, scheduled_at timestamptz
);
CREATE TABLE jobs (
    id bigserial PRIMARY KEY, queue_name varchar NOT NULL, task_name varchar NOT NULL,
    priority integer NOT NULL DEFAULT 0, lock text, args jsonb NOT NULL DEFAULT '{}',
    status job_status NOT NULL DEFAULT 'todo', scheduled_at timestamptz, attempts integer NOT NULL DEFAULT 0
);
CREATE FUNCTION defer_jobs(jobs job_to_defer[]) RETURNS bigint[] LANGUAGE sql AS $$
    WITH inserted AS (
        INSERT INTO jobs (queue_name, task_name, priority, lock, args, scheduled_at)
        SELECT u.queue_name, u.task_name, coalesce(u.priority, 0), u.lock, coalesce(u.args, '{}'), u.scheduled_at
        FROM unnest(jobs) WITH ORDINALITY AS u ORDER BY u.ordinality
        RETURNING id
    )
    SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM inserted
$$;
-- The positions of the NULL elements (an all-NULL composite is no NULL element: its text is not NULL).
CREATE FUNCTION null_jobs(jobs job_to_defer[]) RETURNS integer[] LANGUAGE sql
AS $$ SELECT array_positions(jobs::text[], NULL) $$;
CREATE FUNCTION finish_job(job_id integer, end_status job_status, delete_job boolean) RETURNS void LANGUAGE sql
AS $$ UPDATE jobs SET status = end_status, attempts = attempts + 1 WHERE id = job_id $$;
"""

MAINTENANCE = """
CREATE TABLE maintenance_log (run integer NOT NULL, txid bigint NOT NULL);
CREATE TABLE work (n integer);
-- Each run commits on its own, as pg_partman's *_proc procedures do between partitions.
CREATE PROCEDURE run_maintenance_proc(p_runs integer DEFAULT 2) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..p_runs LOOP
        INSERT INTO maintenance_log VALUES (i, txid_current());
        COMMIT;
    END LOOP;
END $$;
"""


@pytest.fixture
def queue(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(QUEUE)
    return pg_dsn


@pytest.fixture
def jobs(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(JOBS)
    return pg_dsn


@pytest.fixture
def maintenance(pg_dsn: str, pg_exec: Exec) -> str:
    pg_exec(MAINTENANCE)
    return pg_dsn


# -- jsonb[] ----------------------------------------------------------------------------------------------------


@dataclass
class Batch:
    docs: list[dict[str, Any] | None]


@procedure
def send_batch(queue_name: str, msgs: list[Any]) -> list[int]: ...


@procedure("send_batch")
def send_batch_with_headers(
    queue_name: str, msgs: list[dict[str, Any]], headers: list[dict[str, Any]]
) -> list[int]: ...


@procedure("send_batch")  # as `generate` writes an overloaded function's stub
def send_batch__text__jsonb(
    queue_name: Annotated[str, "text"],
    msgs: Annotated[list[Any | None], "jsonb[]"],
    delay: Annotated[int, "integer"] = DEFAULT,
) -> list[int]: ...


@procedure
def messages(queue_name: str) -> list[Any] | None: ...


@procedure
def documents_text(docs: list[Any]) -> str: ...


@query("SELECT send_batch(%(queue)s, %(msgs)s::jsonb[]) AS id")
def send_by_query(queue: str, msgs: list[dict[str, Any]]) -> list[int]: ...


@query("INSERT INTO batches (docs) VALUES (%(docs)s) RETURNING docs")
def keep_batch(docs: Annotated[list[dict[str, Any] | None], "jsonb[]"]) -> Batch: ...


@procedure("send_batch")
async def asend_batch(queue_name: str, msgs: list[Any]) -> list[int]: ...


@procedure("send_batch")
async def asend_batch_with_headers(
    queue_name: str, msgs: list[dict[str, Any]], headers: list[dict[str, Any]]
) -> list[int]: ...


@procedure("messages")
async def amessages(queue_name: str) -> list[Any] | None: ...


@procedure("documents_text")
async def adocuments_text(docs: list[Any]) -> str: ...


@query("SELECT send_batch(%(queue)s, %(msgs)s::jsonb[]) AS id")
async def asend_by_query(queue: str, msgs: list[dict[str, Any]]) -> list[int]: ...


@query("INSERT INTO batches (docs) VALUES (%(docs)s) RETURNING docs")
async def akeep_batch(docs: Annotated[list[dict[str, Any] | None], "jsonb[]"]) -> Batch: ...


#: What the calls below send, and the messages they leave in the queue.
SENT: list[Any] = [{"a": 1}, [1, "x"], None, "text", 2.5]
STORED = [*SENT, {"b": 2}, {"c": None}, {"d": [True]}]
#: A json[] of two documents and a NULL element, as the server writes it.
JSON_ARRAY_TEXT = '{"{\\"f\\": [1]}",NULL,"\\"g\\""}'


def stored_by_hand(pg_exec: Exec) -> list[tuple[Any, ...]]:
    """Each message, its headers, and whether it is an SQL NULL (not a JSON null)."""
    return pg_exec("SELECT message, headers, message IS NULL FROM queue_messages ORDER BY msg_id")


def test_jsonb_array_parameters_take_a_list_of_documents(queue: str, pg_exec: Exec) -> None:
    """A list bound for jsonb[] (pgmq's send_batch and its overloads, from @procedure, a @query cast, or a jsonb[]
    column annotated as `generate` writes it) or json[] goes as one document per item, None as an SQL NULL
    element."""
    with session(queue):
        assert send_batch("q", SENT) == [1, 2, 3, 4, 5]
        assert send_batch_with_headers("q", [{"b": 2}], [{"h": "x"}]) == [6]
        assert send_batch__text__jsonb("q", [{"c": None}]) == [7]
        assert send_by_query("q", [{"d": [True]}]) == [8]
        assert messages("q") == STORED
        assert keep_batch([{"e": 1}, None]) == Batch([{"e": 1}, None])
        assert documents_text([{"f": [1]}, None, "g"]) == JSON_ARRAY_TEXT
    assert stored_by_hand(pg_exec)[2] == (None, None, True)
    assert stored_by_hand(pg_exec)[5] == ({"b": 2}, {"h": "x"}, False)
    assert pg_exec("SELECT docs[2] IS NULL FROM batches") == [(True,)]


def test_async_jsonb_array_parameters_take_a_list_of_documents(queue: str, pg_exec: Exec) -> None:
    """The same calls from async stubs."""

    async def main() -> None:
        async with session(queue):
            assert await asend_batch("q", SENT) == [1, 2, 3, 4, 5]
            assert await asend_batch_with_headers("q", [{"b": 2}], [{"h": "x"}]) == [6]
            assert await asend_batch("q", [{"c": None}]) == [7]
            assert await asend_by_query("q", [{"d": [True]}]) == [8]
            assert await amessages("q") == STORED
            assert await akeep_batch([{"e": 1}, None]) == Batch([{"e": 1}, None])
            assert await adocuments_text([{"f": [1]}, None, "g"]) == JSON_ARRAY_TEXT

    asyncio.run(main())
    assert stored_by_hand(pg_exec)[2] == (None, None, True)
    assert pg_exec("SELECT docs[2] IS NULL FROM batches") == [(True,)]


def test_jsonb_array_items_are_checked_as_documents(queue: str, pg_exec: Exec) -> None:
    """An item JSON cannot hold exactly raises ArgumentError naming the parameter and where in the list it is,
    before anything is sent, sync and async."""

    async def main() -> None:
        async with session(queue):
            with pytest.raises(ArgumentError, match=r"argument 'msgs' has b'\\x00' at \[1\]\['k'\]"):
                await asend_batch("q", [{"k": 1}, {"k": b"\x00"}])

    with session(queue):
        with pytest.raises(ArgumentError, match=r"argument 'msgs' has Decimal\('1.5'\) at \[0\]\['k'\]"):
            send_batch("q", [{"k": Decimal("1.5")}])
        with pytest.raises(ArgumentError, match=r"argument 'msgs' has a value of type set at \[0\]\['k'\]"):
            send_by_query("q", [{"k": {1}}])
    asyncio.run(main())
    assert pg_exec("SELECT count(*) FROM queue_messages") == [(0,)]


# -- arrays of composites -------------------------------------------------------------------------------------------


@dataclass
class JobToDefer:
    queue_name: str
    task_name: str
    priority: int | None = None
    lock: str | None = None
    args: dict[str, Any] | None = None
    scheduled_at: dt.datetime | None = None


AT = dt.datetime(2024, 6, 1, 12, 30, tzinfo=dt.timezone.utc)
BATCH = [JobToDefer("default", "send_mail", 1, "u1", {"to": "ann"}, AT), None, JobToDefer("default", "ping")]


@procedure
def defer_jobs(jobs: list[JobToDefer]) -> list[int]: ...


@procedure
def null_jobs(jobs: list[JobToDefer | None] | None) -> list[int] | None: ...


@query("SELECT unnest(defer_jobs(%(jobs)s::job_to_defer[])) AS id")
def defer_by_query(jobs: list[JobToDefer]) -> list[int]: ...


@query("SELECT unnest(null_jobs(%(jobs)s::job_to_defer[])) AS position")
def null_jobs_by_query(jobs: list[JobToDefer | None]) -> list[int]: ...


@query("SELECT (%(job)s::job_to_defer).task_name")
def task_name(job: JobToDefer) -> str: ...


@procedure("defer_jobs")
async def adefer_jobs(jobs: list[JobToDefer]) -> list[int]: ...


@procedure("null_jobs")
async def anull_jobs(jobs: list[JobToDefer | None] | None) -> list[int] | None: ...


@query("SELECT unnest(defer_jobs(%(jobs)s::job_to_defer[])) AS id")
async def adefer_by_query(jobs: list[JobToDefer]) -> list[int]: ...


@query("SELECT unnest(null_jobs(%(jobs)s::job_to_defer[])) AS position")
async def anull_jobs_by_query(jobs: list[JobToDefer | None]) -> list[int]: ...


@query("SELECT (%(job)s::job_to_defer).task_name")
async def atask_name(job: JobToDefer) -> str: ...


def deferred_by_hand(pg_exec: Exec) -> list[tuple[Any, ...]]:
    return pg_exec("SELECT id, queue_name, task_name, priority, lock, args, scheduled_at FROM jobs ORDER BY id")


EXPECTED_JOBS = [
    (1, "default", "send_mail", 1, "u1", {"to": "ann"}, AT),
    (2, "default", "ping", 0, None, {}, None),
    (3, "default", "send_mail", 1, "u1", {"to": "ann"}, AT),
    (4, "default", "ping", 0, None, {}, None),
]


def test_none_in_an_array_of_composites_is_a_null_element(jobs: str, pg_exec: Exec) -> None:
    """`list[Job | None]` (what `generate` writes for a composite array) sends None as an SQL NULL element, where the
    call by hand (`ARRAY[ROW(...), NULL]`) does; no element becomes a row of NULLs."""
    everything_null = "ROW(NULL, NULL, NULL, NULL, NULL, NULL)::job_to_defer"
    by_hand = f"SELECT null_jobs(ARRAY[ROW('q', 't', 1, NULL, '{{}}', NULL)::job_to_defer, NULL, {everything_null}])"
    assert pg_exec(by_hand) == [([2],)]
    with session(jobs):
        no_fields = JobToDefer(None, None)  # type: ignore[arg-type]
        assert null_jobs([JobToDefer("q", "t", 1, None, {}), None, no_fields]) == [2]
        assert null_jobs([None, None]) == [1, 2]
        assert null_jobs([]) == []
        assert null_jobs(None) is None


def test_async_none_in_an_array_of_composites_is_a_null_element(jobs: str) -> None:
    """The same from an async stub."""

    async def main() -> None:
        async with session(jobs):
            assert await anull_jobs([JobToDefer("q", "t"), None]) == [2]
            assert await anull_jobs([None, None]) == [1, 2]

    asyncio.run(main())


def test_query_casts_to_an_array_of_composites_take_a_list_of_dataclasses(jobs: str, pg_exec: Exec) -> None:
    """`%(jobs)s::job_to_defer[]` in @query SQL (procrastinate's batch defer) makes the composites of the dataclasses
    by field name, None a NULL element; `%(job)s::job_to_defer` one composite. What is stored is what was given."""
    with session(jobs):
        assert defer_jobs([j for j in BATCH if j is not None]) == [1, 2]
        assert defer_by_query([j for j in BATCH if j is not None]) == [3, 4]
        assert null_jobs_by_query(BATCH) == [2]
        assert task_name(JobToDefer("q", "tidy")) == "tidy"
    assert deferred_by_hand(pg_exec) == EXPECTED_JOBS


def test_async_query_casts_to_an_array_of_composites_take_a_list_of_dataclasses(jobs: str, pg_exec: Exec) -> None:
    """The same from async stubs."""

    async def main() -> None:
        async with session(jobs):
            assert await adefer_jobs([j for j in BATCH if j is not None]) == [1, 2]
            assert await adefer_by_query([j for j in BATCH if j is not None]) == [3, 4]
            assert await anull_jobs_by_query(BATCH) == [2]
            assert await atask_name(JobToDefer("q", "tidy")) == "tidy"

    asyncio.run(main())
    assert deferred_by_hand(pg_exec) == EXPECTED_JOBS


# -- procedures that end transactions --------------------------------------------------------------------------------


@procedure(autocommit=True)
def run_maintenance_proc(p_runs: int = DEFAULT) -> None: ...


@procedure("run_maintenance_proc")
def undeclared_maintenance(p_runs: int) -> None: ...


@query("INSERT INTO work VALUES (%(n)s)")
def add_work(n: int) -> None: ...


@procedure("run_maintenance_proc", autocommit=True)
async def arun_maintenance_proc(p_runs: int = DEFAULT) -> None: ...


@procedure("run_maintenance_proc")
async def aundeclared_maintenance(p_runs: int) -> None: ...


@query("INSERT INTO work VALUES (%(n)s)")
async def aadd_work(n: int) -> None: ...


def runs(pg_exec: Exec) -> tuple[int, int]:
    """The runs logged, and in how many transactions they committed."""
    found = pg_exec("SELECT count(*), count(DISTINCT txid) FROM maintenance_log")[0]
    return found[0], found[1]


def test_a_procedure_that_commits_runs_in_an_autocommit_session(maintenance: str, pg_exec: Exec) -> None:
    """A stub declared `autocommit=True` runs its procedure outside a transaction block, each COMMIT of it taking
    effect: calls, repeated calls (prepared) and a batch, sync and async."""
    with session(maintenance, autocommit=True):
        run_maintenance_proc()
        run_maintenance_proc(3)
        run_maintenance_proc.many([(1,), (1,), (2,)])
    assert runs(pg_exec) == (9, 9)

    async def main() -> None:
        async with session(maintenance, autocommit=True):
            await arun_maintenance_proc()
            await arun_maintenance_proc(3)
            await arun_maintenance_proc.many([(1,), (1,), (2,)])

    asyncio.run(main())
    assert runs(pg_exec) == (18, 18)


def test_a_procedure_that_commits_is_refused_where_a_transaction_is_open(maintenance: str, pg_exec: Exec) -> None:
    """In a session with a transaction, or inside `transaction()`, the declared stub raises NoSessionError naming
    itself and the fix before sending anything; the session's own work goes on and commits, sync and async."""
    with session(maintenance):
        add_work(1)
        refused = r"run_maintenance_proc\(\) calls a procedure that ends .* autocommit=True"
        with pytest.raises(NoSessionError, match=refused):
            run_maintenance_proc()
        with pytest.raises(NoSessionError, match=r"run_maintenance_proc\.many\(\) calls"):
            run_maintenance_proc.many([(1,)])
        add_work(2)
    with session(maintenance, autocommit=True), transaction():
        with pytest.raises(NoSessionError, match=r"inside `transaction\(\)`; call it outside"):
            run_maintenance_proc()
        add_work(3)

    async def main() -> None:
        async with session(maintenance):
            await aadd_work(4)
            with pytest.raises(NoSessionError, match=r"arun_maintenance_proc\(\) calls a procedure that ends"):
                await arun_maintenance_proc()
        async with session(maintenance, autocommit=True), transaction():
            with pytest.raises(NoSessionError, match=r"inside `transaction\(\)`"):
                await arun_maintenance_proc()
            await aadd_work(5)

    asyncio.run(main())
    assert pg_exec("SELECT n FROM work ORDER BY n") == [(1,), (2,), (3,), (4,), (5,)]
    assert runs(pg_exec) == (0, 0)


def test_invalid_transaction_termination_names_the_stub_and_the_fix(maintenance: str, pg_exec: Exec) -> None:
    """A stub not declared `autocommit=True` whose procedure commits fails as PostgreSQL says, with a note naming the
    stub and what to do, each note once (a call whose statement is prepared on another connection only goes back to
    a first call's path), in a session and inside `transaction()`, sync and async."""
    fix = "declare the stub `@procedure(..., autocommit=True)` and call it in `session(..., autocommit=True)`"

    def notes(err: BaseException) -> list[str]:
        return [n for n in getattr(err, "__notes__", []) if n.startswith("pgdecor:")]

    with session(maintenance, autocommit=True):  # where PostgreSQL allows it; later calls take the wire
        for _ in range(3):
            undeclared_maintenance(1)
    for where in ("session", "transaction"):
        with (
            pytest.raises(psycopg.errors.InvalidTransactionTermination) as caught,
            session(maintenance, autocommit=where == "transaction"),
            transaction(),
        ):
            undeclared_maintenance(1)
        raised, advice = notes(caught.value)
        assert raised.startswith("pgdecor: raised by ")
        assert "undeclared_maintenance, which ran: CALL" in raised
        assert ".undeclared_maintenance ran a procedure that ends transactions itself" in advice
        assert fix in advice

    async def main(where: str) -> None:
        async with session(maintenance, autocommit=True):
            for _ in range(3):
                await aundeclared_maintenance(1)
        async with session(maintenance, autocommit=where == "transaction"), transaction():
            await aundeclared_maintenance(1)

    for where in ("session", "transaction"):
        with pytest.raises(psycopg.errors.InvalidTransactionTermination) as acaught:
            asyncio.run(main(where))
        raised, advice = notes(acaught.value)
        assert raised.startswith("pgdecor: raised by ")
        assert "aundeclared_maintenance, which ran: CALL" in raised
        assert fix in advice
    assert runs(pg_exec) == (9, 9)
