"""The Python names `pgdecor generate` gives to what the catalog names: stubs, parameters, fields, enum members.

Python reads identifiers NFKC-normalised (``abc`` spelled with a fullwidth ``a`` is the name ``abc``), so names are
compared, and written, as Python will read them. Whatever PostgreSQL names, its Python name is made from it (a
keyword gets a trailing ``_``, a run of characters no identifier has becomes one ``_``), and the SQL name is kept
explicitly wherever Python's would differ: a stub names its function in full (``@procedure("test.assert")``), a
parameter its argument (``Annotated[int, Arg("pass")]``), a field its column (``field(metadata={"column":
...})``). A stub whose name another stub has, and a row of two columns of the same name, are left out, with the
reason.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from collections.abc import Set as AbstractSet

from pgdecor._plan.catalog import Arg, Function
from pgdecor._stubs.caller import RESERVED_PREFIX

__all__ = ["field_names", "member_names", "param_names", "python_name", "stub_names"]


def _nfkc(name: str) -> str:
    return unicodedata.normalize("NFKC", name)


def stub_names(
    schema: str, functions: list[Function], called: list[bool], taken: AbstractSet[str]
) -> tuple[dict[int, str], dict[int, str]]:
    """The Python name of each called function's stub (by index), and why the others have none.

    An overloaded function's stub is ``<name>__<argument types>``. A name that is no identifier is made one
    (`python_name`); a name that is a keyword or in *taken* gets a trailing ``_``. A name that another stub would
    also have stays with the one function whose SQL name it is exactly, and the others are left out (all of them,
    if none is so named): a look-alike function never takes the name of another's stub.
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
            made = python_name(name)
            if made is None:
                why[i] = f"uses the name {name!r}, of which no Python name can be made; write its stub by hand"
                continue
            python = made
        elif python.startswith("__") and python.endswith("__"):
            why[i] = (
                f"uses the name {name!r}, of the form __name__ that Python keeps for names of its own; write its "
                f"stub by hand under another name"
            )
            continue
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


def param_names(inputs: tuple[Arg, ...]) -> list[tuple[str, str | None]]:
    """The stub's parameters: each one's Python name, and the name of the argument it passes where that differs
    (written ``Annotated[..., Arg("pass")]``).

    A call passes arguments by name when all of them have one (as `match` binds them): a parameter keeps its
    argument's name where Python reads it as written, else takes a name made from it (`python_name`). When some
    argument has no name, arguments are passed by position and the names are free: ``arg<position>`` for those
    whose name is not usable, and for all of them if names would repeat (as in ``f(integer, arg1 integer)``).
    """
    if all(arg.name for arg in inputs):
        return _renamed([arg.name or "" for arg in inputs], "arg", _param_usable)
    names = [arg.name if arg.name and _param_usable(arg.name) else f"arg{i + 1}" for i, arg in enumerate(inputs)]
    if len(set(names)) < len(names):
        names = [f"arg{i + 1}" for i in range(len(inputs))]
    return [(name, None) for name in names]


def field_names(columns: list[tuple[str, str]]) -> list[tuple[str, str | None]] | str:
    """The fields of a dataclass for *columns* (name, annotation): each field's Python name, and the column it is
    filled from where that differs (written ``field(metadata={"column": ...})``); or why there can be no such
    class (two columns of one name, which rows cannot tell apart).

    A field keeps its column's name where Python reads it as written, in a class, and no field after it reads that
    name (``int: int`` then ``x: int`` would hide the type ``int`` from ``x``; a field written with ``field(...)``
    reads ``field``); else it takes a name made from it.
    """
    names = [name for name, _ in columns]
    twice = sorted(name for name, n in Counter(names).items() if n > 1)
    if twice:
        return f"two columns named {twice[0]!r}"
    return _renamed(names, "column", _field_usable, [annotation for _, annotation in columns])


def _renamed(
    names: list[str], fallback: str, usable: Callable[[str], bool], annotations: list[str] | None = None
) -> list[tuple[str, str | None]]:
    """Python names for the SQL *names* (see `param_names`, `field_names`), made from the last to the first, so that
    each knows the names read after it (in *annotations*, and ``field`` where a name is kept explicitly)."""
    kept = {name for name in names if usable(name)}
    taken: set[str] = set()
    read_after: set[str] = set()
    out: list[tuple[str, str | None]] = []
    for i in reversed(range(len(names))):
        name = names[i]
        python = name
        if name not in kept or name in taken or name in read_after:
            python = python_name(name) or f"{fallback}{i + 1}"
            if keyword.iskeyword(python) or not usable(python):
                python += "_"
            while python in taken or python in read_after or (python in kept and python != name):
                python += "_"
        taken.add(python)
        explicit = None if python == name else name
        out.append((python, explicit))
        if annotations is not None:
            read_after |= _names_in(annotations[i]) | ({"field"} if explicit is not None else set())
    return out[::-1]


def python_name(name: str) -> str | None:
    """A Python identifier made from the SQL *name*: as Python reads it (NFKC-normalised), each run of characters
    no identifier has written ``_``, no ``_`` at either end, and ``_`` before a leading digit (``welcome.html`` is
    ``welcome_html``, ``http://postgrest.com/foo`` is ``http_postgrest_com_foo``); None if nothing is left."""
    made = re.sub(r"\W+", "_", _nfkc(name)).strip("_")
    if made[:1].isdigit():
        made = "_" + made
    return made if made.isidentifier() and _nfkc(made) == made else None


def _param_usable(name: str) -> bool:
    """Whether a stub's parameter can be named *name*, as its argument is."""
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and name not in ("self", "cls")
        and _nfkc(name) == name
        and not name.startswith(RESERVED_PREFIX)
    )


def _field_usable(name: str) -> bool:
    """Whether a dataclass field can be named *name*, as its column is (not ``__x``, which Python mangles)."""
    return name.isidentifier() and not keyword.iskeyword(name) and _nfkc(name) == name and not name.startswith("__")


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
