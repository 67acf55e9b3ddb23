"""Row types made with msgspec, and stubs returning them, declared as a user would (see test_records.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec

from pgdecor import procedure, query


class Address(msgspec.Struct, frozen=True):
    street: str
    city: str


class Profile(msgspec.Struct):
    since: dt.date
    score: Decimal
    home: Address | None = None


class Person(msgspec.Struct, kw_only=True):
    id: int
    name: str = msgspec.field(name="fullName")  # renamed in msgspec's encodings only: the column is `name`
    age: int | None
    address: Address
    profile: Profile
    homes: list[Address]


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


class WrongAge(msgspec.Struct):
    id: int
    age: str | None


@query("SELECT id, age FROM people WHERE id = %(id)s")
def wrong_age(id: int) -> WrongAge | None: ...


@query("SELECT id, age FROM people WHERE id = %(id)s")
async def awrong_age(id: int) -> WrongAge | None: ...


class StrictAge(msgspec.Struct):
    id: int
    age: int


@query("SELECT id, age FROM people WHERE id = %(id)s")
def strict_age(id: int) -> StrictAge | None: ...


@query("SELECT id, age FROM people WHERE id = %(id)s")
async def astrict_age(id: int) -> StrictAge | None: ...


class WrongAddress(msgspec.Struct):
    street: str
    city: int


class WrongHome(msgspec.Struct):
    id: int
    address: WrongAddress


@query("SELECT id, address FROM people WHERE id = %(id)s")
def wrong_home(id: int) -> WrongHome | None: ...


class Adult(msgspec.Struct):
    id: int
    age: int | None

    def __post_init__(self) -> None:  # msgspec's place for checks its types cannot say
        if self.age is not None and self.age < 40:
            msg = "age must be at least 40"
            raise ValueError(msg)


@query("SELECT id, age FROM people WHERE id = %(id)s")
def adult(id: int) -> Adult | None: ...


@query("SELECT id, age FROM people WHERE id = %(id)s")
async def aadult(id: int) -> Adult | None: ...


class LocalAddress(msgspec.Struct):
    street: str
    city: str

    def __post_init__(self) -> None:
        if self.city == "Springfield":
            msg = "no Springfield"
            raise ValueError(msg)


class Local(msgspec.Struct):
    id: int
    address: LocalAddress


@query("SELECT id, address FROM people WHERE id = %(id)s")
def local(id: int) -> Local | None: ...


@query("SELECT id, address FROM people WHERE id = %(id)s")
async def alocal(id: int) -> Local | None: ...


class VettedProfile(msgspec.Struct):
    since: dt.date
    score: Decimal

    def __post_init__(self) -> None:
        if self.score <= 10:
            msg = "score must be greater than 10"
            raise ValueError(msg)


class Vetted(msgspec.Struct):
    id: int
    profile: VettedProfile


@query("SELECT id, profile FROM people WHERE id = %(id)s")
def vetted(id: int) -> Vetted | None: ...


@query("SELECT id, profile FROM people WHERE id = %(id)s")
async def avetted(id: int) -> Vetted | None: ...
