# Generated from tests/usercode/copy_stubs_async.py by tools/async_to_sync.py: do not edit, edit the source.
"""The sync twin of `tests.usercode.copy_stubs_async`, generated from it: see there."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pgdecor import copy_in, copy_out


@dataclass
class Person:
    id: int
    name: str
    age: int | None


@dataclass
class WrongAge:
    id: int
    name: str
    age: str  # the column is an integer


@dataclass
class WithNickname:
    id: int
    name: str
    nickname: str  # no such column


@dataclass
class StrictAge:
    id: int
    age: int  # the column may be NULL


@dataclass
class OnlyId:
    id: int  # the NOT NULL column name, which has no default, is left out


@copy_in("people")
def load_people(rows: Iterable[Person]) -> int: ...


@copy_out("people")
def export_people() -> Iterator[Person]: ...


@copy_in("people")
def load_wrong_age(rows: Iterable[WrongAge]) -> int: ...


@copy_out("people")
def export_nicknames() -> Iterator[WithNickname]: ...


@copy_out("people")
def export_strict_ages() -> Iterator[StrictAge]: ...


@copy_in("people")
def load_ids(rows: Iterable[OnlyId]) -> int: ...


@copy_in("nobody")
def load_nobody(rows: Iterable[Person]) -> int: ...
