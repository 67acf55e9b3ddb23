"""SQL names Python cannot spell, as `pgdecor generate` writes them and users do: a function named in double quotes,
parameters passing arguments named as keywords (`Arg`), fields filled from columns no identifier names, and a
generic row of a polymorphic function."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Generic, TypeVar

from typing_extensions import assert_type

from pgdecor import DEFAULT, Arg, procedure

T = TypeVar("T")


@dataclass
class Link:
    url: str | None = field(metadata={"column": "http://postgrest.com/foo"})
    from_: int | None = field(metadata={"column": "from"})


@dataclass
class RestoreChangeRow(Generic[T]):
    changed: T | None
    from_: int | None = field(metadata={"column": "from"})


@procedure("edge.class")
def class_(from_: Annotated[int, Arg("from")], def_: Annotated[str | None, Arg("def")] = DEFAULT) -> str:
    raise NotImplementedError


@procedure('edge."welcome.html"')
async def welcome_html() -> str | None:
    raise NotImplementedError


@procedure("edge.restore_change")
def restore_change(during: int, original: T | None) -> RestoreChangeRow[T] | None:
    raise NotImplementedError


@procedure("edge.link_of")
def link_of(from_: Annotated[int | None, Arg("from")]) -> Link | None:
    raise NotImplementedError


async def calls() -> None:
    assert_type(class_(1, "x"), str)
    assert_type(class_(from_=1), str)
    assert_type(await welcome_html(), str | None)
    assert_type(restore_change(1, "x"), RestoreChangeRow[str] | None)  # pyrefly: ignore[assert-type]
    assert_type(link_of(None), Link | None)
    class_("1")  # type: ignore[arg-type]
    class_(from_=1, def_=2)  # type: ignore[arg-type]
    Arg(1)  # type: ignore[arg-type]
