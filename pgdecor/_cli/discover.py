"""What `pgdecor check` reports, and where it finds stubs: the decorated functions (and methods) of modules and
packages, imported with all their submodules.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgdecor._plan.copy import CopyPlan
    from pgdecor._plan.plan import Plan

__all__ = ["FoundStub", "Problem", "find_stubs"]


@dataclass(frozen=True)
class Problem:
    """One way a stub does not match the database."""

    #: ``path:line`` of the stub's ``def``.
    location: str
    #: ``module.qualname`` of the stub.
    stub: str
    #: What the database has.
    database: str
    #: What the stub says.
    stub_says: str
    #: How to make them agree.
    fix: str

    def __str__(self) -> str:
        return f"{self.location}: {self.stub}: {self.database}; the stub says {self.stub_says}; {self.fix}"


@dataclass(frozen=True)
class FoundStub:
    stub: str
    location: str
    #: What pgdecor made of the stub (a `SignatureError` if it cannot be made): a call's plan, or a COPY stub's
    #: (`pgdecor.copy_in`, `pgdecor.copy_out`); None for a stub with nothing in the database to compare (a `listen`
    #: stub).
    plan: Callable[[], Plan | CopyPlan | None]


def find_stubs(modules: Iterable[str | ModuleType], skipped: list[str] | None = None) -> list[FoundStub]:
    """Import *modules* (packages with all their submodules) and collect their decorated stubs, methods too.
    A module attribute that raises when looked at (a context-local proxy such as Flask's ``request``) is passed
    over, and said in *skipped*."""
    found: dict[int, FoundStub] = {}
    for module in _modules(modules):
        for name, value in list(vars(module).items()):
            try:
                fns = list(_stub_functions(value, module))
            except Exception as err:  # noqa: BLE001 - whatever it raises, it is no stub of ours
                if skipped is not None:
                    skipped.append(f"{module.__name__}.{name} ({type(err).__qualname__} when looked at)")
                continue
            for fn in fns:
                wrapped = inspect.unwrap(fn)
                location = f"{inspect.getsourcefile(wrapped) or '?'}:{wrapped.__code__.co_firstlineno}"
                plan = _plan_of(fn)
                assert plan is not None
                found.setdefault(id(fn), FoundStub(f"{fn.__module__}.{fn.__qualname__}", location, plan))
    return sorted(found.values(), key=lambda s: s.location)


def _modules(names: Iterable[str | ModuleType]) -> Iterator[ModuleType]:
    for name in names:
        module = importlib.import_module(name) if isinstance(name, str) else name
        yield module
        if hasattr(module, "__path__"):
            for info in pkgutil.walk_packages(module.__path__, prefix=module.__name__ + "."):
                yield importlib.import_module(info.name)


def _plan_of(value: Any) -> Callable[[], Plan | CopyPlan] | None:
    """How a stub gives its plan (a COPY stub's is an attribute of its own), or None for anything else."""
    found: Callable[[], Plan | CopyPlan] | None = getattr(value, "__pgdecor_plan__", None)
    return found or getattr(value, "__pgdecor_copy__", None)


def _stub_functions(value: Any, module: ModuleType) -> Iterator[Any]:
    if _plan_of(value) is not None and getattr(value, "__module__", None) == module.__name__:
        yield value
    elif inspect.isclass(value) and value.__module__ == module.__name__:
        for member in vars(value).values():
            inner = member
            if isinstance(member, (staticmethod, classmethod)):
                inner = member.__func__
            elif isinstance(member, cached_property):
                inner = member.func
            elif isinstance(member, property):
                inner = member.fget
            if _plan_of(inner) is not None:
                yield inner
