"""The Python names `pgdecor generate` gives to what the catalog names: stubs, parameters, fields, enum members.

Python reads identifiers NFKC-normalised (``abc`` spelled with a fullwidth ``a`` is the name ``abc``), so names are
compared, and written, as Python will read them. A stub's name may change, since its decorator names the
function in full; a parameter's or a field's may not, since arguments are passed and rows read by name: where
it would have to, the function is left out, with the reason.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections import Counter
from collections.abc import Set as AbstractSet

from ._catalog import Arg, Function
from ._signature import _RESERVED_PREFIX

__all__ = ["field_problem", "hiding_field", "member_names", "param_names", "param_problem", "stub_names", "visible"]


def _nfkc(name: str) -> str:
    return unicodedata.normalize("NFKC", name)


def stub_names(
    schema: str, functions: list[Function], called: list[bool], taken: AbstractSet[str]
) -> tuple[dict[int, str], dict[int, str]]:
    """The Python name of each called function's stub (by index), and why the others have none.

    An overloaded function's stub is ``<name>__<argument types>``. A name that is a keyword or in *taken* gets a
    trailing ``_``. A name that another stub would also have stays with the one function whose SQL name it is
    exactly, and the others are left out (all of them, if none is so named): a look-alike function never takes
    the name of another's stub.
    """
    counts = Counter(f.name for f in functions)
    names: dict[int, str] = {}
    why: dict[int, str] = {}
    for i, function in enumerate(functions):
        if not called[i]:
            continue
        name = function.name
        if counts[name] > 1:  # each argument's own type name: a domain's, not its base type's
            name += "__" + "_".join(a.type.name or a.type.base for a in function.inputs)
        python = _nfkc(name)
        if not (name.isidentifier() and python.isidentifier()):
            why[i] = f"uses the name {name!r}, which is not a Python identifier"
        elif python.startswith("__") and python.endswith("__"):
            why[i] = (
                f"uses the name {name!r}, of the form __name__ that Python keeps for names of its own; write its "
                f"stub by hand under another name"
            )
        else:
            names[i] = python + "_" if keyword.iskeyword(python) or python in taken else python
    claims: dict[str, list[int]] = {}
    for i, python in names.items():
        claims.setdefault(python, []).append(i)
    for python, claimants in claims.items():
        if len(claimants) == 1:
            continue
        exact = [i for i in claimants if functions[i].name == python]
        for i in claimants:
            if i in exact:
                continue
            del names[i]
            note = " (Python reads names NFKC-normalised)" if _nfkc(functions[i].name) != functions[i].name else ""
            others = ", ".join(f"{schema}.{functions[j].signature}" for j in claimants if j != i)
            if exact:
                why[i] = f"its stub would be named {python!r}{note}, the name of the stub of {others}"
            else:
                why[i] = f"its stub would be named {python!r}{note}, as would the stub of {others}"
            why[i] += "; write its stub by hand under another name"
    return names, why


def param_problem(inputs: tuple[Arg, ...]) -> str | None:
    """Why no stub can take the function's arguments *inputs*, or None.

    A call passes arguments by name when all of them have one (as `match` binds them): each parameter is then
    named exactly as its argument, which Python must read as written.
    """
    if not all(arg.name for arg in inputs):
        return None  # by position: any names serve
    for arg in inputs:
        problem = _unusable(arg.name or "")
        if problem is not None:
            return f"a parameter named {arg.name!r}, {problem}"
    return None


def param_names(inputs: tuple[Arg, ...]) -> list[str]:
    """The stub's parameter names: the arguments' own, or, passed by position, ``arg<position>`` for those that
    have no usable name, and for all of them if names would repeat (as in ``f(integer, arg1 integer)``)."""
    if all(arg.name for arg in inputs):
        return [arg.name or "" for arg in inputs]
    names = [arg.name if arg.name and _unusable(arg.name) is None else f"arg{i + 1}" for i, arg in enumerate(inputs)]
    if len(set(names)) < len(names):
        names = [f"arg{i + 1}" for i in range(len(inputs))]
    return names


def _unusable(name: str) -> str | None:
    """Why a stub's parameter cannot be named *name*, or None."""
    if not name.isidentifier() or keyword.iskeyword(name) or name in ("self", "cls"):
        return "which is not a Python identifier"
    if _nfkc(name) != name:
        return f"which Python reads as {_nfkc(name)!r}, while arguments are passed by their names"
    if name.startswith(_RESERVED_PREFIX):
        return f"whose prefix {_RESERVED_PREFIX!r} pgdecor keeps for names of its own"
    return None


def field_problem(name: str, before: AbstractSet[str]) -> str | None:
    """Why a dataclass field cannot be named *name* (rows fill fields by name) after fields *before*, or None."""
    if not name.isidentifier() or keyword.iskeyword(name):
        return f"a field named {name!r}, which is not a Python identifier"
    if _nfkc(name) != name:
        return f"a field named {name!r}, which Python reads as {_nfkc(name)!r}, while rows fill fields by name"
    if name.startswith("__"):
        return f"a field named {name!r}, which Python renames or keeps for itself in a class"
    if name in before:
        return f"two fields named {name!r}"
    return None


def hiding_field(fields: list[tuple[str, str]]) -> str | None:
    """Why a class with *fields* (name, annotation) would not type-check: a field named as what the annotation of
    a field after it reads (``int: int`` then ``x: int``), which mypy then takes for the field; or None."""
    for i, (name, _) in enumerate(fields):
        if any(name in _names_in(later) for _, later in fields[i + 1 :]):
            return f"a field named {name!r}, which would hide {name} from the annotations of the fields after it"
    return None


def _names_in(annotation: str) -> set[str]:
    """The names an annotation reads from the module (not the attributes after a dot)."""
    return set(re.findall(r"(?<![\w.])[^\W\d]\w*", annotation))


def member_names(labels: list[str]) -> list[str]:
    """The members of an Enum for an enum type's *labels*: each label upper-cased, its other characters ``_``;
    ``VALUE_<position>`` where that is no name, or is taken."""
    members: list[str] = []
    for i, label in enumerate(labels):
        member = _nfkc(re.sub(r"\W", "_", label).upper()).strip("_") or f"VALUE_{i}"
        if not member.isidentifier() or keyword.iskeyword(member) or member in members or member[0].isdigit():
            member = f"VALUE_{i}"
        while member in members:  # a label spelled as another's fallback: 'value_1' before '-'
            member += "_"
        members.append(member)
    return members


def visible(literal: str) -> str:
    """The body of a string literal with its invisible characters escaped (controls but newline and tab, format
    characters such as bidirectional overrides, line separators): the same value, and source that shows it."""
    return "".join(
        repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c not in "\n\t" else c for c in literal
    )
