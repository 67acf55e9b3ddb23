"""Row types made with pydantic, and stubs returning them, declared as a user would (see test_records.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, Field, HttpUrl, SecretStr, field_validator

from pgdecor import procedure, query


class Address(BaseModel):
    street: str
    city: str


class Profile(BaseModel):
    since: dt.date
    score: Decimal
    home: Address | None = None


class Person(BaseModel):
    id: int
    name: str = Field(alias="fullName")  # the column is `name`; the model is passed it as fullName
    age: int | None
    address: Address
    profile: Profile
    homes: list[Address]


ANN = Person(
    id=1,
    fullName="ann",
    age=36,
    address=Address(street="1 Main St", city="Springfield"),
    profile=Profile(
        since=dt.date(2020, 1, 2), score=Decimal("1.5"), home=Address(street="2 Elm St", city="Shelbyville")
    ),
    homes=[Address(street="3 Oak St", city="Ogdenville")],
)
BOB = Person(
    id=2,
    fullName="bob",
    age=None,
    address=Address(street="4 Pine St", city="Capital City"),
    profile=Profile(since=dt.date(2021, 3, 4), score=Decimal(2)),
    homes=[],
)
NEW_ADDRESS = Address(street="9 New St", city="North Haverbrook")
NEW_PROFILE = Profile(since=dt.date(2024, 5, 6), score=Decimal("7.25"), home=NEW_ADDRESS)


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


class WrongAge(BaseModel):
    id: int
    age: str | None


@query("SELECT id, age FROM people WHERE id = %(id)s")
def wrong_age(id: int) -> WrongAge | None: ...


@query("SELECT id, age FROM people WHERE id = %(id)s")
async def awrong_age(id: int) -> WrongAge | None: ...


class StrictAge(BaseModel):
    id: int
    age: int


@query("SELECT id, age FROM people WHERE id = %(id)s")
def strict_age(id: int) -> StrictAge | None: ...


@query("SELECT id, age FROM people WHERE id = %(id)s")
async def astrict_age(id: int) -> StrictAge | None: ...


class WrongAddress(BaseModel):
    street: str
    city: int


class WrongHome(BaseModel):
    id: int
    address: WrongAddress


@query("SELECT id, address FROM people WHERE id = %(id)s")
def wrong_home(id: int) -> WrongHome | None: ...


class Adult(BaseModel):
    id: int
    age: int | None = Field(ge=40)


@query("SELECT id, age FROM people WHERE id = %(id)s")
def adult(id: int) -> Adult | None: ...


@query("SELECT id, age FROM people WHERE id = %(id)s")
async def aadult(id: int) -> Adult | None: ...


class LocalAddress(BaseModel):
    street: str
    city: str

    @field_validator("city")
    @classmethod
    def not_springfield(cls, city: str) -> str:
        if city == "Springfield":
            msg = "no Springfield"
            raise ValueError(msg)
        return city


class Local(BaseModel):
    id: int
    address: LocalAddress


@query("SELECT id, address FROM people WHERE id = %(id)s")
def local(id: int) -> Local | None: ...


@query("SELECT id, address FROM people WHERE id = %(id)s")
async def alocal(id: int) -> Local | None: ...


class VettedProfile(BaseModel):
    since: dt.date
    score: Decimal = Field(gt=10)


class Vetted(BaseModel):
    id: int
    profile: VettedProfile


@query("SELECT id, profile FROM people WHERE id = %(id)s")
def vetted(id: int) -> Vetted | None: ...


@query("SELECT id, profile FROM people WHERE id = %(id)s")
async def avetted(id: int) -> Vetted | None: ...


class Account(BaseModel):
    id: int
    secret: SecretStr  # types pydantic makes itself: from the column's value, whatever it is
    site: HttpUrl


@query(
    "SELECT id, CASE WHEN age IS NOT NULL THEN name END AS secret, 'https://example.org/' || name AS site "
    "FROM people WHERE id = %(id)s"
)
def account(id: int) -> Account | None: ...


@query(
    "SELECT id, CASE WHEN age IS NOT NULL THEN name END AS secret, 'https://example.org/' || name AS site "
    "FROM people WHERE id = %(id)s"
)
async def aaccount(id: int) -> Account | None: ...
