"""How `pgdecor generate` lays out the source it writes: as ruff's formatter (and black) would, so that a generated
module passes ``ruff format --check`` whatever the length of the names in it.

A construct is written on one line where it fits in 88 columns; where it does not, its brackets are split one item
a line with a trailing comma, which the formatter keeps so (its "magic trailing comma"), and an annotation or a
value is put in parentheses where that makes it fit.
"""

from __future__ import annotations

import textwrap
import unicodedata
from dataclasses import dataclass

__all__ = ["Param", "call", "docstring", "field_line", "member_line", "signature", "width"]

#: The formatter's default line length.
LINE = 88


def width(line: str) -> int:
    """The columns *line* takes, as the formatter counts them: East Asian wide characters two, combining and
    format characters none."""
    return sum(
        0 if unicodedata.category(c) in ("Mn", "Me", "Cf") else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in line
    )


def _fits(line: str) -> bool:
    return width(line) <= LINE


def call(head: str, args: list[str], indent: str = "") -> str:
    """``head(arg, ...)``: on one line, or one argument a line."""
    one = f"{indent}{head}({', '.join(args)})"
    if _fits(one) or not args:
        return one
    return f"{indent}{head}(\n" + "".join(f"{indent}    {a},\n" for a in args) + f"{indent})"


@dataclass(frozen=True)
class Param:
    """A parameter of a generated stub: ``{lead}{annotation}{default}``, the annotation ``Annotated[...]`` when
    *hints* are given."""

    lead: str
    annotation: str
    hints: tuple[str, ...] = ()
    default: str = ""

    def __str__(self) -> str:
        return f"{self.lead}{self._annotated(', '.join([self.annotation, *self.hints]))}{self.default}"

    def _annotated(self, inner: str) -> str:
        return f"Annotated[{inner}]" if self.hints else inner

    def line(self) -> str:
        """The parameter on a line of its own, in a signature split one parameter a line."""
        one = f"    {self},"
        if _fits(one) or not self.hints:
            return one
        items = "".join(f"        {item},\n" for item in [self.annotation, *self.hints])
        return f"    {self.lead}Annotated[\n{items}    ]{self.default},"


def signature(prefix: str, name: str, params: list[Param], returns: str) -> str:
    """``def name(params) -> returns:`` (*prefix* ``async `` or nothing)."""
    one = f"{prefix}def {name}({', '.join(map(str, params))}) -> {returns}:"
    if _fits(one) or not params:
        return one
    return f"{prefix}def {name}(\n" + "\n".join(p.line() for p in params) + f"\n) -> {returns}:"


def field_line(name: str, annotation: str, column: str | None) -> str:
    """A dataclass field, filled from the column of its name, or from *column* (a string literal)."""
    value = f' = field(metadata={{"column": {column}}})' if column is not None else ""
    one = f"    {name}: {annotation}{value}"
    if _fits(one):
        return one
    head = f"    {name}: {annotation}"
    if not _fits(head + (" = field(" if column is not None else "")) and _fits(f"        {annotation}"):
        head = f"    {name}: (\n        {annotation}\n    )"
    if column is None:
        return head
    metadata = f'metadata={{"column": {column}}}'
    if _fits(f"        {metadata},"):
        return f"{head} = field(\n        {metadata},\n    )"
    return f'{head} = field(\n        metadata={{\n            "column": {column},\n        }},\n    )'


def _expanded(line: str) -> str:
    text = line.lstrip(" \t")
    return line[: len(line) - len(text)].expandtabs(8) + text


def member_line(name: str, value: str) -> str:
    """An enum member, ``NAME = value``."""
    one = f"    {name} = {value}"
    if _fits(one) or not _fits(f"        {value}"):
        return one
    return f"    {name} = (\n        {value}\n    )"


def docstring(body: str) -> str:
    """A docstring of *body* (escaped already), in a function or class body: its first line without leading space,
    the others indented as the body is, each without trailing space and with the tabs of its indentation
    expanded."""
    first, _, rest = body.strip().partition("\n")
    lines = (
        textwrap.dedent("\n".join(_expanded(line.rstrip()) for line in rest.split("\n"))).split("\n") if rest else []
    )
    return '"""' + first.rstrip() + "".join(f"\n    {line}" if line else "\n" for line in lines) + '"""'
