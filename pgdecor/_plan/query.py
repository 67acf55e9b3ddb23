"""`@query` stubs: the SQL a stub gives, read once, and the one statement it makes.

At decoration, the SQL is cut at its ``%(name)s`` placeholders, each naming a parameter (or, in a method stub, an
attribute of ``self``), every parameter used (`query_pieces`). Once the annotations resolve, each placeholder
becomes a `Slot` (`query_slots`), and `QueryCall` composes the statement: each placeholder sent as its annotation
and the cast written after it say (`_plan.argument_sql`).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

from pgdecor._errors import SignatureError
from pgdecor._rows.convert import Convert
from pgdecor._rows.registry import ServerKey

from .argument_sql import query_argument
from .params import DEFAULT, Param, arg_name
from .statement import Statement, pick

__all__ = ["Pieces", "QueryCall", "Slot", "query_pieces", "query_slots"]

#: A `@query`'s SQL cut at its placeholders: the text between them, and each placeholder's name and format.
Pieces = tuple[str | tuple[str, str], ...]

_PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?(?P<format>.?)", re.DOTALL)
#: A positional placeholder of PostgreSQL's own (``$1``), as SQL written for other drivers has.
_DOLLAR = re.compile(r"(?<![\w$])\$[1-9][0-9]*(?![\w$])")


def query_pieces(stub: str, text: str, sig: inspect.Signature, *, receiver: str | None) -> Pieces:
    """*text* cut at its placeholders, each checked against the stub's parameters (*receiver*: the first is
    ``self`` or ``cls``; with ``self``, a placeholder naming no parameter takes the instance's attribute). Raises
    `SignatureError` for a placeholder not of the form ``%(name)s`` or naming nothing, and for a parameter unused."""
    names = list(sig.parameters)[1 if receiver else 0 :]
    if any(p.default is DEFAULT for p in sig.parameters.values()):
        msg = f"{stub}: DEFAULT leaves an argument to a function's own default; it has no meaning in @query SQL"
        raise SignatureError(msg)
    pieces: list[str | tuple[str, str]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        pieces.append(text[pos : m.start()])
        pos = m.end()
        name, fmt = m.group("name"), m.group("format")
        if name is None and fmt == "%":
            pieces.append("%%")
            continue
        if name is None or fmt not in ("s", "b", "t"):
            msg = (
                f"{stub}: placeholder {m.group()!r} in @query SQL is not of the form %(name)s; "
                f"name each placeholder after a parameter, and write a literal % as %%"
            )
            raise SignatureError(msg)
        if name not in names and receiver != "self":
            msg = (
                f"{stub}: @query SQL uses %({name})s but the stub has no parameter {name!r}; "
                f"add the parameter or fix the placeholder (parameters: {', '.join(names) or 'none'})"
            )
            raise SignatureError(msg)
        pieces.append((name, fmt))
    pieces.append(text[pos:])
    used = {p[0] for p in pieces if isinstance(p, tuple)}
    unused = [n for n in names if n not in used]
    if unused:
        dollar = _DOLLAR.search(text)
        if dollar is not None:
            msg = (
                f"{stub}: @query SQL uses the placeholder {dollar.group()}, which pgdecor does not bind: it binds "
                f"parameters by name; write %({unused[0]})s where the SQL means parameter {unused[0]!r}"
            )
            raise SignatureError(msg)
        msg = (
            f"{stub}: parameter {unused[0]!r} is not used by the @query SQL; "
            f"add %({unused[0]})s to the SQL or remove the parameter"
        )
        raise SignatureError(msg)
    return tuple(pieces)


@dataclass(frozen=True)
class Slot:
    """A placeholder of a `@query`'s SQL: where its value comes from (the index of an argument, or the name of an
    attribute of ``self``), its annotation, the parameter's name, and psycopg's format for it."""

    source: int | str
    annotation: Any
    name: str
    format: str


def query_slots(stub: str, pieces: Pieces, params: tuple[Param, ...], *, receiver: bool) -> list[str | Slot]:
    """*pieces* with each placeholder made a `Slot` from the parameter it names (*receiver*: the first parameter is
    ``self`` or ``cls``, which no placeholder names), or else from the attribute of ``self`` of its name."""
    for p in params:
        named = arg_name(p.annotation)
        if named is not None:
            msg = (
                f"{stub}: parameter {p.name!r} is annotated Arg({named!r}), which names a function's argument; "
                f"@query SQL names its placeholders after the parameters: write %({p.name})s and drop the Arg"
            )
            raise SignatureError(msg)
    by_name = {p.name: (i, p) for i, p in enumerate(params) if i > 0 or not receiver}
    slots: list[str | Slot] = []
    for piece in pieces:
        if isinstance(piece, str):
            slots.append(piece)
            continue
        name, fmt = piece
        if name in by_name:
            index, param = by_name[name]
            slots.append(Slot(index, param.annotation, name, param.format if fmt == "s" else fmt))
        else:  # an attribute of self
            slots.append(Slot(name, Any, name, fmt))
    return slots


class QueryCall:
    """The fixed statement of a `@query` stub."""

    def __init__(self, stub: str, pieces: list[str | Slot], nargs: int) -> None:
        parts: list[str] = []
        picks: list[tuple[int | str, Convert | None, str]] = []
        placeholders: list[tuple[Any, int | None]] = []
        for i, piece in enumerate(pieces):
            if isinstance(piece, str):
                parts.append(piece)
                continue
            following = pieces[i + 1] if i + 1 < len(pieces) else ""
            template, adapter, oid = query_argument(piece.annotation, following if isinstance(following, str) else "")
            parts.append(template.replace("{value}", f"%{piece.format}"))
            count = template.count("{value}")
            picks += [(piece.source, adapter, piece.name)] * count
            placeholders += [(piece.annotation, oid)] * count
        #: Each placeholder's annotation, and the type oid pgdecor sends it as (None: psycopg's dumper for the
        #: value decides): what `check` prepares the statement with.
        self.placeholders = tuple(placeholders)
        plain = [s for s, a, _ in picks if isinstance(s, int) and a is None]
        indices = tuple(plain) if len(plain) == len(picks) else None
        direct = indices == tuple(range(nargs))
        self.statement = Statement(
            "".join(parts), tuple(pick(stub, s, a, n) for s, a, n in picks), direct, indices=indices
        )

    def cached(self, key: ServerKey, args: tuple[Any, ...]) -> Statement:  # noqa: ARG002 - same as ProcedureCall
        return self.statement
