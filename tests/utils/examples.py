"""The examples of README.md and docs/, read as a reader sees them, and run as they would paste them.

A page's ```` ```sql ```` blocks are its schema: applied in order to a database of the page's, which is copied to a
fresh database ``app`` before each of its ```` ```python ```` blocks runs, so that ``postgresql:///app`` (with
``PGHOST`` and friends pointing at the test server) is what the examples say it is. Each Python block runs alone,
as a module of its own (its own imports, its own session); every ``print(...)  # expected`` line says what the
line prints, ``...`` standing for any text. A block opening with ``# conftest.py`` is a test suite: its files
(each opened by a ``# name.py`` line) are written to a folder, and pytest runs them there.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^```(\w*)\s*$")
_EXPECTED = re.compile(r"^\s*print\(.*\)  # (?P<out>.*)$")
_FILE = re.compile(r"^# (?P<name>[\w/]+\.py)$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the block's first line of code
    lang: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def expected(self) -> list[str]:
        """What the block's ``print(...)  # expected`` lines say they print, in order."""
        return [m["out"] for line in self.code.splitlines() if (m := _EXPECTED.match(line))]

    def files(self) -> dict[str, str] | None:
        """A test suite's files (name → text), if the block is one."""
        lines = self.code.splitlines(keepends=True)
        if not lines or not _FILE.match(lines[0].strip()) or lines[0].strip() != "# conftest.py":
            return None
        out: dict[str, list[str]] = {}
        current = None
        for line in lines:
            m = _FILE.match(line.strip())
            if m:
                current = out.setdefault(m["name"], [])
            else:
                assert current is not None
                current.append(line)
        return {name: "".join(text).strip() + "\n" for name, text in out.items()}


def blocks(page: Path) -> list[Block]:
    found = []
    lang = None
    start = 0
    body: list[str] = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        m = _FENCE.match(line)
        if lang is None and m and m[1]:
            lang, start, body = m[1], number + 1, []
        elif lang is not None and line.strip() == "```":
            found.append(Block(page, start, lang, "\n".join(body) + "\n"))
            lang = None
        elif lang is not None:
            body.append(line)
    return found


def python_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page) if b.lang == "python"]


def schema_of(page: Path) -> str:
    """The page's schema: its SQL blocks, in order."""
    return "\n".join(b.code for b in blocks(page) if b.lang == "sql")


def matches(expected: str, actual: str) -> bool:
    """Whether *actual* is what *expected* says, ``...`` standing for any text."""
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


@contextlib.contextmanager
def as_main() -> Iterator[types.ModuleType]:
    """A fresh ``__main__`` module while the block runs, as ``python example.py`` would run it (dataclasses and
    annotations look their module up in ``sys.modules``); pytest's own is put back afterwards."""
    saved = sys.modules["__main__"]
    module = sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield module
    finally:
        sys.modules["__main__"] = saved


def run(block: Block) -> list[str]:
    """Run a Python block as a script; return the lines it printed."""
    out = io.StringIO()
    with as_main() as module, contextlib.redirect_stdout(out):
        module.__file__ = str(block.page)
        exec(compile(block.code, block.id, "exec"), module.__dict__)  # noqa: S102 - running the docs is the point
    return out.getvalue().splitlines()
