"""Write pgdecor's sync modules from their async sources: ``python tools/async_to_sync.py [--check]``.

The async module is the one written by hand; its sync twin is derived by a small AST-guided rewrite of the source
text (so comments and layout survive), then formatted with ruff (imports left unused dropped, imports and
``__all__`` sorted again):

- ``await x`` becomes ``x``; ``async def``, ``async with`` and ``async for`` lose ``async``;
- ``finish(x, ...)`` (`pgdecor._wire.shield`: waiting through cancellations) becomes ``x``;
- names in `RENAMES` are renamed wherever they are used, defined or imported (``AsyncConnection`` → ``Connection``,
  ``__aexit__`` → ``__exit__``, ``_session.lease_async`` → ``_session.lease``, ...);
- ``is_async=True``, as a keyword argument, becomes ``is_async=False``;
- ``if True:  # ASYNC`` blocks keep only their ``else:`` body (or nothing), for what differs by nature; an
  ``except`` clause holding only such a block and a bare ``raise`` goes (a ``try`` keeps its ``finally``).

The sync tests of behaviour both kinds have are generated the same way from async test modules (`TESTS`, with a
module of stubs they share in tests/usercode/), as psycopg generates its own: there `TEST_RENAMES` too (an async
stub of tests/usercode/ → its sync twin, ``copy_stubs_async`` → ``copy_stubs``, ``Database.arun`` → ``run``,
``asynccontextmanager`` → ``contextmanager``, psycopg's ``AsyncClientCursor`` → ``ClientCursor``), also inside
strings, where the messages a test expects name its stubs; ``[x async for x in xs]`` loses ``async``; ``(await
x).y`` loses its parentheses with its ``await``; a union left with a member twice (``Iterable[T] |
AsyncIterable[T]``) keeps it once; and ``with`` statements nested alone (``async with session(...):`` around
``with pytest.raises(...):``, at any depth) become one ``with``, as a sync test writes it, their items' ``await``
dropped (``async with await AsyncConnection.connect(...) as conn``).

With ``--check`` nothing is written: the exit status is 1 if a sync module is not what its source makes.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import TypeGuard

ROOT = Path(__file__).resolve().parent.parent

#: Async source → the sync module generated from it.
MODULES = {
    "pgdecor/_sources/probe_async.py": "pgdecor/_sources/probe.py",
    "pgdecor/_sources/pool_async.py": "pgdecor/_sources/pool.py",
    "pgdecor/_sources/conninfo_async.py": "pgdecor/_sources/conninfo.py",
    "pgdecor/_sources/user_objects_async.py": "pgdecor/_sources/user_objects.py",
    "pgdecor/_session/begin_async.py": "pgdecor/_session/begin.py",
    "pgdecor/_session/lease_async.py": "pgdecor/_session/lease.py",
    "pgdecor/_session/replica_async.py": "pgdecor/_session/replica.py",
    "pgdecor/_session/scope_async.py": "pgdecor/_session/scope.py",
    "pgdecor/_run/lookup_async.py": "pgdecor/_run/lookup.py",
    "pgdecor/_run/call_async.py": "pgdecor/_run/call.py",
    "pgdecor/_run/batch_async.py": "pgdecor/_run/batch.py",
    "pgdecor/_run/stream_async.py": "pgdecor/_run/stream.py",
    "pgdecor/_run/runner_async.py": "pgdecor/_run/runner.py",
    "pgdecor/_service/retry_async.py": "pgdecor/_service/retry.py",
    "pgdecor/_channels/listener_async.py": "pgdecor/_channels/listener.py",
    "pgdecor/_channels/connection_async.py": "pgdecor/_channels/connection.py",
    "pgdecor/_channels/waiter_async.py": "pgdecor/_channels/waiter.py",
    "pgdecor/_run/copy_out_async.py": "pgdecor/_run/copy_out.py",
    "pgdecor/_run/copy_async.py": "pgdecor/_run/copy.py",
    "pgdecor/_wire/liveness_async.py": "pgdecor/_wire/liveness.py",
    "pgdecor/_wire/wire_async.py": "pgdecor/_wire/wire.py",
    "pgdecor/_wire/reads_async.py": "pgdecor/_wire/reads.py",
}

#: Async test module (or module of stubs the tests share) → the sync module generated from it.
TESTS = {
    "tests/channels/test_notifications_async.py": "tests/channels/test_notifications.py",
    "tests/guarantees/test_outcomes_async.py": "tests/guarantees/test_outcomes.py",
    "tests/limits/test_deadlines_async.py": "tests/limits/test_deadlines.py",
    "tests/limits/test_slow_async.py": "tests/limits/test_slow.py",
    "tests/plan/test_catalog_async.py": "tests/plan/test_catalog.py",
    "tests/plan/test_results_async.py": "tests/plan/test_results.py",
    "tests/plan/test_signature_async.py": "tests/plan/test_signature.py",
    "tests/rows/test_loads_async.py": "tests/rows/test_loads.py",
    "tests/rows/test_records_async.py": "tests/rows/test_records.py",
    "tests/run/test_affected_async.py": "tests/run/test_affected.py",
    "tests/run/test_copy_async.py": "tests/run/test_copy.py",
    "tests/run/test_many_async.py": "tests/run/test_many.py",
    "tests/run/test_trace_async.py": "tests/run/test_trace.py",
    "tests/service/test_database_async.py": "tests/service/test_database.py",
    "tests/service/test_units_async.py": "tests/service/test_units.py",
    "tests/session/test_lease_async.py": "tests/session/test_lease.py",
    "tests/session/test_session_async.py": "tests/session/test_session.py",
    "tests/sources/test_replicas_async.py": "tests/sources/test_replicas.py",
    "tests/usercode/copy_stubs_async.py": "tests/usercode/copy_stubs.py",
    "tests/wire/test_wire_async.py": "tests/wire/test_wire.py",
}

RENAMES = {
    # psycopg, psycopg_pool and the standard library
    "AsyncConnection": "Connection",
    "AsyncConnectionPool": "ConnectionPool",
    "AsyncCursor": "Cursor",
    "AsyncIterator": "Iterator",
    "AsyncServerCursor": "ServerCursor",
    "AsyncTransaction": "Transaction",
    "StopAsyncIteration": "StopIteration",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "_acheck_borrowed": "_check_borrowed",
    "_aconfigure": "_configure",
    "_aopen_pool": "_open_pool",
    "_areach": "_reach",
    "_areopening": "_reopening",
    "_aborrow": "_borrow",
    "_aentered": "_entered",
    "_afinish": "_finish",
    "aborrow": "borrow",
    "aclose": "close",
    "aconnect": "connect",
    "aconnected": "connected",
    "aend": "end",
    "agetconn": "getconn",
    "agive_back": "give_back",
    "aopen": "open",
    "apause": "pause",
    "alease_for": "lease_for",
    "_aend": "_end",
    # pgdecor
    "AsyncBatchResults": "BatchResults",
    "AsyncBatches": "Batches",
    "AsyncChunks": "Chunks",
    "AsyncCalls": "Calls",
    "AsyncCopier": "Copier",
    "AsyncCopyReader": "CopyReader",
    "AsyncCopyStream": "CopyStream",
    "AsyncLease": "Lease",
    "AsyncListener": "Listener",
    "AsyncConnectionSource": "ConnectionSource",
    "AsyncPool": "Pool",
    "AsyncPoolSource": "PoolSource",
    "AsyncRunner": "Runner",
    "AsyncSavepoint": "Savepoint",
    "AsyncScope": "Scope",
    "AsyncBatchStream": "BatchStream",
    "AsyncState": "SyncState",
    "AsyncStream": "Stream",
    "AsyncUnit": "Unit",
    "AsyncWaiter": "Waiter",
    "AsyncWire": "Wire",
    "_AsyncRead": "_Read",
    "_apool": "_pool",
    "arun_unit": "run_unit",
    "connection_async": "connection",
    "conninfo_async": "conninfo",
    "batch_async": "batch",
    "begin_async": "begin",
    "call_async": "call",
    "copy_async": "copy",
    "copy_out_async": "copy_out",
    "lease_async": "lease",
    "listener_async": "listener",
    "liveness_async": "liveness",
    "reads_async": "reads",
    "lookup_async": "lookup",
    "pool_async": "pool",
    "replica_async": "replica",
    "probe_async": "probe",
    "retry_async": "retry",
    "runner_async": "runner",
    "scope_async": "scope",
    "stream_async": "stream",
    "waiter_async": "waiter",
    "user_objects_async": "user_objects",
    "wire_async": "wire",
    "aconnection": "connection",
    "aconnection_for": "connection_for",
    "apool": "pool",
    "areap": "reap",
    "aready": "ready",
    "areplica_connection": "replica_connection",
    "is_async_state": "is_sync_state",
}

#: Renamed in test modules only, wherever a name is used, defined, imported or written in a string.
TEST_RENAMES = {
    **RENAMES,
    "AsyncClientCursor": "ClientCursor",
    "AsyncIterable": "Iterable",
    "aaccount": "account",
    "asynccontextmanager": "contextmanager",
    "arun": "run",
    "aadd_note": "add_note",
    "aadd_user": "add_user",
    "aadult": "adult",
    "aall_people": "all_people",
    "aall_users": "all_users",
    "acount_users": "count_users",
    "aeach_user": "each_user",
    "aget_later": "get_later",
    "aget_person": "get_person",
    "aget_user": "get_user",
    "aload_person": "load_person",
    "aload_user": "load_user",
    "alocal": "local",
    "amove": "move",
    "anext": "next",
    "anote": "note",
    "aon_standby": "on_standby",
    "aset_email": "set_email",
    "aset_profile": "set_profile",
    "astrict_age": "strict_age",
    "asoak_user": "soak_user",
    "auser_ids": "user_ids",
    "auser_name": "user_name",
    "auser_row": "user_row",
    "ausers_by_domain": "users_by_domain",
    "avetted": "vetted",
    "awrong_age": "wrong_age",
    "copy_stubs_async": "copy_stubs",
}
_WORD = re.compile(r"\b\w+\b")
_ASYNC_FOR = re.compile(r"\basync\s+(?=for\b)")
_AWAIT = re.compile(r"\bawait\s+")

_DROP, _DEDENT = "\x00drop", "\x00dedent"
_QUOTED = re.compile(r"`(\w+)`")

_HEADER = "# Generated from {source} by tools/async_to_sync.py: do not edit, edit the source.\n"


def _end(node: ast.AST) -> tuple[int, int]:
    line, col = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
    assert line is not None
    assert col is not None
    return line, col


class _Rewrite(ast.NodeVisitor):
    """Collects the edits that turn an async module's source into its sync twin."""

    def __init__(self, lines: list[str], *, test: bool = False) -> None:
        self.lines = lines
        #: A test module: `TEST_RENAMES`, in its strings too.
        self.test = test
        self.renames = TEST_RENAMES if test else RENAMES
        #: (line, column) start, (line, column) end, replacement; lines 1-based, columns in characters.
        self.edits: list[tuple[tuple[int, int], tuple[int, int], str]] = []
        #: Lines to drop, and lines to dedent by one level (the kept ``else:`` bodies).
        self.dropped: set[int] = set()
        self.dedented: list[int] = []

    def _keyword(self, node: ast.AST, word: str) -> None:
        line, col = node.lineno, node.col_offset  # type: ignore[attr-defined]
        text = self.lines[line - 1]
        assert text[col:].startswith(word), (line, text)
        end = col + len(word)
        while end < len(text) and text[end] == " ":
            end += 1
        self.edits.append(((line, col), (line, end), ""))

    def _rename_at(self, line: int, col: int, name: str) -> None:
        new = self.renames.get(name)
        if new is not None and new != name:
            self.edits.append(((line, col), (line, col + len(name)), new))

    def visit_Await(self, node: ast.Await) -> None:
        self._keyword(node, "await")
        self.generic_visit(node)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        if not self._merged(node):
            self._keyword(node, "async")
            self.generic_visit(node)

    def visit_With(self, node: ast.With) -> None:
        if not self._merged(node):
            self.generic_visit(node)

    def _merged(self, node: ast.With | ast.AsyncWith) -> bool:
        """In a test, ``with`` statements nested alone in each other (``async with session(...):`` around ``with
        pytest.raises(...):``, or the other way round) become one ``with`` of all their items, as a sync test
        writes them: the items' names renamed here (the edit spans them), the innermost body dedented, and ruff
        formats the header."""
        chain: list[ast.With | ast.AsyncWith] = [node]
        while len(chain[-1].body) == 1 and isinstance(chain[-1].body[0], (ast.With, ast.AsyncWith)):
            chain.append(chain[-1].body[0])
        if not self.test or len(chain) == 1:
            return False
        source = "".join(self.lines)
        segments = [
            f"{ast.get_source_segment(source, i.context_expr)}"
            + (f" as {ast.get_source_segment(source, i.optional_vars)}" if i.optional_vars else "")
            for w in chain
            for i in w.items
        ]
        items = ", ".join(_WORD.sub(lambda m: self.renames.get(m[0], m[0]), _AWAIT.sub("", text)) for text in segments)
        innermost = chain[-1]
        header_end = innermost.body[0].lineno - 1
        self.edits.append(((node.lineno, node.col_offset), (header_end, len(self.lines[header_end - 1].rstrip("\n"))),
                           f"with ({items}):"))  # fmt: skip
        for _ in chain[1:]:
            self.dedented.extend(range(header_end + 1, _end(innermost)[0] + 1))
        for child in innermost.body:
            self.visit(child)
        return True

    def _unparenthesized(self, value: ast.expr) -> None:
        """``(await x)`` in front of ``.y`` or ``[i]`` in a test: the parentheses go with the ``await``."""
        if not self.test or not isinstance(value, ast.Await):
            return
        end = _end(value)
        before = self.lines[value.lineno - 1][: value.col_offset].rstrip()
        after = self.lines[end[0] - 1][end[1] :]
        if before.endswith("(") and after.startswith(")"):
            self.edits.append(((value.lineno, len(before) - 1), (value.lineno, len(before)), ""))
            self.edits.append((end, (end[0], end[1] + 1), ""))

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self._unparenthesized(node.value)
        self.generic_visit(node)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> None:
        self._keyword(node, "async")
        self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._keyword(node, "async")
        self._defined(node, "def", node.name)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._defined(node, "def", node.name)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._defined(node, "class", node.name)
        self.generic_visit(node)

    def _defined(self, node: ast.AST, keyword: str, name: str) -> None:
        line = node.lineno  # type: ignore[attr-defined]
        col = self.lines[line - 1].index(f"{keyword} {name}", node.col_offset) + len(keyword) + 1  # type: ignore[attr-defined]
        self._rename_at(line, col, name)

    def visit_Name(self, node: ast.Name) -> None:
        self._rename_at(node.lineno, node.col_offset, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._unparenthesized(node.value)
        self.generic_visit(node)
        line, col = _end(node)
        self._rename_at(line, col - len(node.attr), node.attr)

    def visit_arg(self, node: ast.arg) -> None:
        self._rename_at(node.lineno, node.col_offset, node.arg)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = ".".join(self.renames.get(part, part) for part in (node.module or "").split("."))
        renamed = [(self.renames.get(a.name, a.name), a.asname) for a in node.names]
        names = ", ".join(name + (f" as {alias}" if alias and alias != name else "") for name, alias in renamed)
        text = f"from {'.' * node.level}{module} import {names}"
        self.edits.append(((node.lineno, node.col_offset), _end(node), text))

    def visit_Constant(self, node: ast.Constant) -> None:
        """Strings: one that is a name to rename (in ``__all__``), and names in backquotes in docstrings."""
        if not isinstance(node.value, str):
            return
        start, end = (node.lineno, node.col_offset), _end(node)
        if node.value in RENAMES:
            self.edits.append((start, end, repr(RENAMES[node.value]).replace("'", '"')))
            return
        segment = ast.get_source_segment("".join(self.lines), node)
        if segment is not None:
            if self.test:
                renamed = _WORD.sub(lambda m: self.renames.get(m[0], m[0]), segment)
            else:
                renamed = _QUOTED.sub(lambda m: f"`{RENAMES.get(m[1], m[1])}`", segment)
            if renamed != segment:
                self.edits.append((start, end, renamed))

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        """An f-string of a test module: its words renamed, its replacement fields' names included."""
        if not self.test:
            self.generic_visit(node)
            return
        segment = ast.get_source_segment("".join(self.lines), node)
        assert segment is not None
        renamed = _WORD.sub(lambda m: self.renames.get(m[0], m[0]), segment)
        if renamed != segment:
            self.edits.append(((node.lineno, node.col_offset), _end(node), renamed))

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp) -> None:
        """``[x async for x in xs]`` → ``[x for x in xs]`` (the generators of a comprehension have no position)."""
        if any(g.is_async for g in node.generators):
            line, end = node.lineno, _end(node)
            for number in range(line, end[0] + 1):
                text = self.lines[number - 1]
                start = node.col_offset if number == line else 0
                stop = end[1] if number == end[0] else len(text)
                for m in _ASYNC_FOR.finditer(text, start, stop):
                    edit = ((number, m.start()), (number, m.end()), "")
                    if edit not in self.edits:
                        self.edits.append(edit)
        self.generic_visit(node)

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comprehension(node)

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self._comprehension(node)

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node)

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self._comprehension(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg == "is_async" and isinstance(node.value, ast.Constant) and node.value.value is True:
            self.edits.append(((node.value.lineno, node.value.col_offset), _end(node.value), "False"))
            return
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "finish":  # the work itself, unshielded
            inner = node.args[0]
            self.edits.append(((node.lineno, node.col_offset), (inner.lineno, inner.col_offset), ""))
            self.edits.append((_end(inner), _end(node), ""))
            self.visit(inner)
            return
        self.generic_visit(node)

    def _marked(self, node: ast.stmt) -> TypeGuard[ast.If]:
        """Whether *node* is an ``if True:  # ASYNC`` block."""
        return (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Constant)
            and node.test.value is True
            and self.lines[node.lineno - 1].rstrip().endswith("# ASYNC")
        )

    def visit_Try(self, node: ast.Try) -> None:
        """An ``except`` clause that only does something async and raises again goes, in a ``try`` left with a
        ``finally`` or another clause: in the sync twin it would only raise again."""
        for handler in node.handlers:
            body = handler.body
            only_async = (
                len(body) == 2
                and self._marked(body[0])
                and not body[0].orelse
                and isinstance(body[1], ast.Raise)
                and body[1].exc is None
            )
            if only_async and (node.finalbody or len(node.handlers) > 1):
                self.dropped.update(range(handler.lineno, _end(handler)[0] + 1))
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        marked = self._marked(node)
        if not marked:
            self.generic_visit(node)
            return
        last = _end(node)[0]
        if not node.orelse:
            self.dropped.update(range(node.lineno, last + 1))
            return
        first_kept = node.orelse[0].lineno
        self.dropped.update(range(node.lineno, first_kept))
        self.dedented.extend(range(first_kept, last + 1))
        for child in node.orelse:
            self.visit(child)


def convert(source: str, name: str) -> str:
    """The sync module for the async module *source* (read from *name*), formatted."""
    lines = source.splitlines(keepends=True)
    rewrite = _Rewrite(lines, test=name in TESTS)
    tree = ast.parse(source)
    docstring = tree.body[0]
    if isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant):  # says what generated it
        module = name.removesuffix(".py").replace("/", ".")
        text = f'"""The sync twin of `{module}`, generated from it: see there."""'
        rewrite.edits.append(((1, 0), _end(docstring), text))
        tree.body = tree.body[1:]
    rewrite.visit(tree)
    # The edits, last first, so that earlier positions stay good; lines are rejoined for multi-line edits.
    offsets = [0]
    for text in lines:
        offsets.append(offsets[-1] + len(text))
    text = "".join(lines)

    def pos(at: tuple[int, int]) -> int:
        return offsets[at[0] - 1] + at[1]

    # Lines to drop or dedent are marked first (zero-width edits at their start), as edits may join lines.
    marks = [((n, 0), (n, 0), _DROP) for n in rewrite.dropped]
    marks += [((n, 0), (n, 0), _DEDENT) for n in rewrite.dedented if n not in rewrite.dropped]
    edits = [e for e in rewrite.edits if e[0][0] not in rewrite.dropped]
    # A line an edit joins to the one before (the header of merged `with`s, inside the body of others) has no start.
    joined = [(pos(start), pos(end)) for start, end, _ in edits if end[0] > start[0]]
    marks = [m for m in marks if not any(a < pos(m[0]) < b for a, b in joined)]
    for start, end, new in sorted(edits + marks, key=lambda e: (pos(e[0]), pos(e[1])), reverse=True):
        text = text[: pos(start)] + new + text[pos(end) :]
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith(_DROP):
            continue
        levels = 0
        while line.startswith(_DEDENT):  # the kept else-body, or the body of merged `with`s, levels out
            line = line.removeprefix(_DEDENT)  # noqa: PLW2901
            levels += 1
        out.append(line.removeprefix("    " * levels) if levels else line)
    result = _HEADER.format(source=name) + "".join(out)
    return _ruff(result, name)


def _ruff(text: str, name: str) -> str:
    target = {**MODULES, **TESTS}[name]
    # `[x async for x in xs]` becomes `list(xs)` in a sync test, and `Iterable[T] | Iterable[T]` one `Iterable[T]`.
    fixes = ["F401,I001,RUF022,C416,PYI016", "--unsafe-fixes"] if name in TESTS else ["F401,I001,RUF022"]
    for command in (
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            *fixes,
            "--fix",
            "--quiet",
            "--stdin-filename",
            target,
            "-",
        ],
        [sys.executable, "-m", "ruff", "format", "--quiet", "--stdin-filename", target, "-"],
    ):
        done = subprocess.run(command, input=text, capture_output=True, text=True, check=False, cwd=ROOT)
        if done.returncode not in (0, 1) or not done.stdout:
            sys.exit(f"{name}: {' '.join(command[2:4])} failed:\n{done.stderr}")
        text = done.stdout
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a sync module is stale")
    check = parser.parse_args().check
    stale = []
    for source, target in {**MODULES, **TESTS}.items():
        made = convert((ROOT / source).read_text(), source)
        path = ROOT / target
        if path.exists() and path.read_text() == made:
            continue
        stale.append(target)
        if not check:
            path.write_text(made)
    for target in stale:
        print(f"{target}: {'stale: run python tools/async_to_sync.py' if check else 'written'}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
