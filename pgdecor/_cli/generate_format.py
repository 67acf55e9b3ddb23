"""How `pgdecor generate` lays out the source it writes: as ruff's formatter (and black) would, so that a generated
module passes ``ruff format --check`` whatever the length of the names in it.

A construct is written on one line where it fits in 88 columns; where it does not, its brackets are split one item
a line with a trailing comma, which the formatter keeps so (its "magic trailing comma"), and an annotation or a
value is put in parentheses where that makes it fit.
"""

from __future__ import annotations

import json
import textwrap
import unicodedata
from dataclasses import dataclass

__all__ = [
    "Param",
    "call",
    "docstring",
    "field_line",
    "import_line",
    "literal",
    "member_line",
    "signature",
    "visible",
    "width",
]

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
        """The parameter on a line of its own (or more), in a signature split one parameter a line."""
        one = f"    {self},"
        if _fits(one):
            return one
        if not self.hints:
            return "\n".join(_split(self.lead, self.annotation, f"{self.default},", "    "))
        items = "".join(f"        {item},\n" for item in [self.annotation, *self.hints])
        return f"    {self.lead}Annotated[\n{items}    ]{self.default},"


def _split(lead: str, annotation: str, tail: str, indent: str) -> list[str]:
    """The lines of ``{lead}{annotation}{tail}`` at *indent*, split as the formatter splits a parameter's annotation
    that does not fit: at each ``|`` of a union, then inside the brackets of a part still too long."""
    one = f"{indent}{lead}{annotation}{tail}"
    if _fits(one):
        return [one]
    parts = _top_level(annotation, " | ")
    if len(parts) > 1:
        return [
            line
            for i, part in enumerate(parts)
            for line in _split(lead if i == 0 else "| ", part, tail if i == len(parts) - 1 else "", indent)
        ]
    if not annotation.endswith("]") or "[" not in annotation:
        return [one]
    head, _, inner = annotation[:-1].partition("[")
    return [f"{indent}{lead}{head}[", *_split("", inner, "", indent + "    "), f"{indent}]{tail}"]


def _top_level(annotation: str, separator: str) -> list[str]:
    """*annotation* split at each *separator* outside brackets."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(annotation):
        depth += {"[": 1, "]": -1}.get(c, 0)
        if depth == 0 and annotation.startswith(separator, i):
            parts.append(annotation[start:i])
            start = i + len(separator)
    return [*parts, annotation[start:]]


def signature(prefix: str, name: str, params: list[Param], returns: str) -> str:
    """``def name(params) -> returns:`` (*prefix* ``async `` or nothing)."""
    one = f"{prefix}def {name}({', '.join(map(str, params))}) -> {returns}:"
    if _fits(one):
        return one
    last = f") -> {returns}:"
    if not _fits(last if params else one) and _fits(f"    {returns}"):
        last = f") -> (\n    {returns}\n):"
    if not params:
        return f"{prefix}def {name}({last}" if last.startswith(") -> (") else one
    return f"{prefix}def {name}(\n" + "\n".join(p.line() for p in params) + f"\n{last}"


def field_line(name: str, annotation: str, column: str | None) -> str:
    """A dataclass field, filled from the column of its name, or from *column* (a string literal). Too long for a
    line, the formatter splits its value; else puts the value in parentheses (for an annotation it could split, or
    if all of it then fits); else splits the annotation."""
    value = f' = field(metadata={{"column": {column}}})' if column is not None else ""
    one = f"    {name}: {annotation}{value}"
    if _fits(one):
        return one
    head = f"    {name}: {annotation}"
    if column is None:
        return _annotation(name, annotation, "", alone=True)
    if _fits(f"{head} = field("):
        return f"{head} = {_field_call(column, '    ')}"
    inner = _field_call(column, "        ")
    splittable = len(_top_level(annotation, " | ")) > 1 or annotation.endswith("]")
    if _fits(f"{head} = (") and (splittable or all(_fits(line) for line in inner.split("\n"))):
        return f"{head} = (\n        {inner}\n    )"
    return _annotation(name, annotation, f" = {_field_call(column, '    ')}", alone=False)


def _annotation(name: str, annotation: str, rest: str, *, alone: bool) -> str:
    """``name: annotation`` and *rest* (its value, if any) split at the annotation: inside its brackets if it is
    one subscript (``list[...]``) with a value, or whose opening fits; else in parentheses if it could be split
    or has no value (*alone*)."""
    unions = len(_top_level(annotation, " | ")) > 1
    subscript = not unions and annotation.endswith("]")
    outer, _, inner = annotation[:-1].partition("[")
    if subscript and (_fits(f"    {name}: {outer}[") or not alone):
        return f"    {name}: {outer}[\n        {inner}\n    ]{rest}"
    if (unions or subscript or alone) and _fits(f"        {annotation}"):
        return f"    {name}: (\n        {annotation}\n    ){rest}"
    return f"    {name}: {annotation}{rest}"


def _field_call(column: str, indent: str) -> str:
    """``field(metadata={"column": ...})`` split one argument a line (and its dict too, if still too long), closed
    at *indent*."""
    inner = indent + "    "
    metadata = f'metadata={{"column": {column}}}'
    if _fits(f"{inner}{metadata},"):
        return f"field(\n{inner}{metadata},\n{indent})"
    return f'field(\n{inner}metadata={{\n{inner}    "column": {column},\n{inner}}},\n{indent})'


def _expanded(line: str) -> str:
    text = line.lstrip(" \t")
    return line[: len(line) - len(text)].expandtabs(8) + text


def member_line(name: str, value: str) -> str:
    """An enum member, ``NAME = value``."""
    one = f"    {name} = {value}"
    if _fits(one) or not _fits(f"        {value}"):
        return one
    return f"    {name} = (\n        {value}\n    )"


def docstring(text: str) -> str:
    """A docstring of *text*, in a function or class body: backslashes, quotes and invisible characters escaped, so
    that any name or comment reads as written; its first line without leading space, the others indented as the
    body is, each without trailing space and with the tabs of its indentation expanded."""
    body = visible(text.replace("\\", "\\\\").replace('"', '\\"'))
    first, _, rest = body.strip().partition("\n")
    lines = (
        textwrap.dedent("\n".join(_expanded(line.rstrip()) for line in rest.split("\n"))).split("\n") if rest else []
    )
    return '"""' + first.rstrip() + "".join(f"\n    {line}" if line else "\n" for line in lines) + '"""'


def literal(text: str) -> str:
    """A Python string literal, quoted as the formatter quotes it: in double quotes, unless the text has more of them
    than single quotes."""
    body = json.dumps(text, ensure_ascii=False)[1:-1]  # every quote escaped, and every backslash
    if text.count('"') > text.count("'"):
        return visible("'" + body.replace('\\"', '"').replace("'", "\\'") + "'")
    return visible(f'"{body}"')


def import_line(source: str, names: set[str]) -> str:
    """``from source import names``, the names in isort's (and ruff's) order: constants, then classes, then the
    others."""
    ordered = sorted(names, key=lambda name: (0 if name.isupper() else 1 if name[:1].isupper() else 2, name))
    return f"from {source} import {', '.join(ordered)}"


def visible(literal: str) -> str:
    """The body of a string literal with its invisible characters escaped (controls but newline and tab, format
    characters such as bidirectional overrides, line separators): the same value, and source that shows it."""
    return "".join(
        repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c not in "\n\t" else c for c in literal
    )
