"""Row types made with attrs, and stubs returning them, declared as a user would (see test_records.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import attrs

from pgdecor import procedure, query


@attrs.frozen
class Address:
    street: str
    city: str


@attrs.frozen
class Profile:
    since: dt.date
    _score: Decimal  # the JSON key is `score`, as the parameter of __init__
    home: Address | None = None


def _tuple_of(homes: list[Address]) -> tuple[Address, ...]:
    return tuple(homes)


@attrs.frozen(kw_only=True)
class Person:
    id: int
    _name: str  # private: filled from the column `name`, the parameter __init__ takes it by
    age: int | None
    address: Address
    profile: Profile
    homes: tuple[Address, ...] = attrs.field(converter=_tuple_of)  # the column is what the converter takes


ANN = Person(
    id=1,
    name="ann",
    age=36,
    address=Address("1 Main St", "Springfield"),
    profile=Profile(dt.date(2020, 1, 2), Decimal("1.5"), Address("2 Elm St", "Shelbyville")),
    homes=[Address("3 Oak St", "Ogdenville")],
)
BOB = Person(
    id=2,
    name="bob",
    age=None,
    address=Address("4 Pine St", "Capital City"),
    profile=Profile(dt.date(2021, 3, 4), Decimal(2)),
    homes=[],
)
NEW_ADDRESS = Address("9 New St", "North Haverbrook")
NEW_PROFILE = Profile(dt.date(2024, 5, 6), Decimal("7.25"), NEW_ADDRESS)


@procedure("get_person")
def load_person(id: int) -> Person: ...


@procedure
def get_person(id: int) -> Person | None: ...


@procedure
def all_people() -> list[Person]: ...


@procedure("get_person")
async def aget_person(id: int) -> Person | None: ...


@procedure("all_people")
async def aall_people() -> list[Person]: ...


@procedure("get_person")
async def aload_person(id: int) -> Person: ...


@procedure
def move(id: int, address: Address) -> Person: ...


@procedure("move")
async def amove(id: int, address: Address) -> Person: ...


@query("UPDATE people SET profile = %(profile)s WHERE id = %(id)s")
def set_profile(id: int, profile: Profile) -> None: ...


@query("UPDATE people SET profile = %(profile)s WHERE id = %(id)s")
async def aset_profile(id: int, profile: Profile) -> None: ...


@attrs.frozen
class WrongAge:
    id: int
    age: str | None


@query("SELECT id, age FROM people WHERE id = %(id)s")
def wrong_age(id: int) -> WrongAge | None: ...


@query("SELECT id, age FROM people WHERE id = %(id)s")
async def awrong_age(id: int) -> WrongAge | None: ...


@attrs.frozen
class StrictAge:
    id: int
    age: int


@query("SELECT id, age FROM people WHERE id = %(id)s")
def strict_age(id: int) -> StrictAge | None: ...


@query("SELECT id, age FROM people WHERE id = %(id)s")
async def astrict_age(id: int) -> StrictAge | None: ...


@attrs.frozen
class WrongAddress:
    street: str
    city: int


@attrs.frozen
class WrongHome:
    id: int
    address: WrongAddress


@query("SELECT id, address FROM people WHERE id = %(id)s")
def wrong_home(id: int) -> WrongHome | None: ...


def _at_least_40(instance: Any, attribute: attrs.Attribute[int | None], age: int | None) -> None:
    if age is not None and age < 40:
        msg = f"{attribute.name} must be at least 40"
        raise ValueError(msg)


@attrs.frozen
class Adult:
    id: int
    age: int | None = attrs.field(validator=_at_least_40)


@query("SELECT id, age FROM people WHERE id = %(id)s")
def adult(id: int) -> Adult | None: ...


@query("SELECT id, age FROM people WHERE id = %(id)s")
async def aadult(id: int) -> Adult | None: ...


def _not_springfield(instance: Any, attribute: attrs.Attribute[str], city: str) -> None:
    if city == "Springfield":
        msg = "no Springfield"
        raise ValueError(msg)


@attrs.frozen
class LocalAddress:
    street: str
    city: str = attrs.field(validator=_not_springfield)


@attrs.frozen
class Local:
    id: int
    address: LocalAddress


@query("SELECT id, address FROM people WHERE id = %(id)s")
def local(id: int) -> Local | None: ...


@query("SELECT id, address FROM people WHERE id = %(id)s")
async def alocal(id: int) -> Local | None: ...


@attrs.frozen
class VettedProfile:
    since: dt.date
    score: Decimal = attrs.field(validator=attrs.validators.gt(Decimal(10)))


@attrs.frozen
class Vetted:
    id: int
    profile: VettedProfile


@query("SELECT id, profile FROM people WHERE id = %(id)s")
def vetted(id: int) -> Vetted | None: ...


@query("SELECT id, profile FROM people WHERE id = %(id)s")
async def avetted(id: int) -> Vetted | None: ...
