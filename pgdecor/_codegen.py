"""Functions compiled from generated source, for the per-call and per-row paths where a loop or a generic
function would cost more than straight-line code.

Sources are built from identifiers and numbers only, never from values. Each distinct source is compiled once
per process (stubs of one shape share the code object) and kept in `linecache` so tracebacks show it.
"""

from __future__ import annotations

import linecache
import sys
from types import CodeType
from typing import Any

_CODE: dict[str, CodeType] = {}


def compiled(src: str, what: str) -> CodeType:
    """*src* compiled once per process, under a file name unique per source."""
    code = _CODE.get(src)
    if code is None:
        filename = f"<pgdecor generated {what} #{len(_CODE) + 1}>"
        code = _CODE[src] = compile(src, filename, "exec")
        linecache.cache[filename] = (len(src), None, src.splitlines(keepends=True), filename)
    return code


def define(src: str, name: str, what: str, namespace: dict[str, Any] | None = None) -> Any:
    """Run *src* (which defines *name*) in *namespace* and return what it defined."""
    namespace = {} if namespace is None else namespace
    exec(compiled(src, what), namespace)  # noqa: S102 - see the module docstring
    return namespace[name]


def named(function: Any, name: str, qualname: str, owner: str, what: str) -> None:
    """Give a generated *function* the name of the stub it serves, in tracebacks too: its code object (sharing the
    compiled code) says *name*, and its file ``<pgdecor generated {what} of {owner}>`` shows the source."""
    code = function.__code__
    source = linecache.cache.get(code.co_filename)
    filename = f"<pgdecor generated {what} of {owner}>"
    changes: dict[str, Any] = {"co_name": name, "co_filename": filename}
    if sys.version_info >= (3, 11):
        changes["co_qualname"] = qualname
    function.__code__ = code.replace(**changes)
    if source is not None:
        linecache.cache[filename] = source
