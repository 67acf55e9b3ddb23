"""COPY stubs as a user writes them, for `pgdecor check` (tests/run/test_copy_async.py): some agree with the table
``people`` (``id int PRIMARY KEY, name text NOT NULL, age int``), the others each disagree one way.

These are the async stubs; tests/usercode/copy_stubs.py, their sync twins, is generated from them by
tools/async_to_sync.py."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
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
async def load_people(rows: Iterable[Person] | AsyncIterable[Person]) -> int: ...


@copy_out("people")
def export_people() -> AsyncIterator[Person]: ...


@copy_in("people")
async def load_wrong_age(rows: Iterable[WrongAge]) -> int: ...


@copy_out("people")
def export_nicknames() -> AsyncIterator[WithNickname]: ...


@copy_out("people")
async def export_strict_ages() -> AsyncIterator[StrictAge]: ...


@copy_in("people")
async def load_ids(rows: Iterable[OnlyId]) -> int: ...


@copy_in("nobody")
async def load_nobody(rows: Iterable[Person]) -> int: ...
