"""Typing of models, DEFAULT, VARIADIC, Annotated PostgreSQL types and error maps."""

from __future__ import annotations

from typing import Annotated

from typing_extensions import assert_type

from pgdecor import DEFAULT, Counters, Database, NotFoundError, Problem, check, procedure, session
from tests.usercode.models import Member, Order


@procedure
def greet(name: str, greeting: str = DEFAULT, punct: str = DEFAULT) -> str: ...


@procedure
def total(label: str, *nums: int) -> str: ...


@procedure("size")
def big_size(x: Annotated[int, "bigint"]) -> str: ...


@procedure(errors={"P0002": NotFoundError, "23505": ValueError})
def find_thing(id: int) -> str: ...


def models(member: Member) -> None:
    assert_type(Member.load(1), Member | None)
    assert_type(member.rename("robert"), Member)  # pyrefly: ignore[assert-type, no-matching-overload]
    assert_type(member.delete(), None)  # pyrefly: ignore[assert-type, no-matching-overload]
    assert_type(member.set_email("x@example.org"), None)  # pyrefly: ignore[assert-type, no-matching-overload]
    assert_type(member.orders, list[Order])  # pyrefly: ignore[assert-type, no-matching-overload]
    member.rename(1)  # type: ignore[arg-type]
    member.delete(1)  # type: ignore[call-arg]
    member.set_email(1)  # type: ignore[arg-type]
    member.orders()  # type: ignore[operator]
    Member.load("1")  # type: ignore[arg-type]


class Account:
    """A method stub whose receiver is positional-only: the form pyrefly binds (docs/guide/static-typing.md)."""

    @procedure("rename_account")
    def rename(self, /, name: str) -> Account: ...


def positional_receiver(account: Account) -> None:
    assert_type(account.rename("savings"), Account)
    account.rename(1)  # type: ignore[arg-type]


def arguments() -> None:
    assert_type(greet("ann"), str)
    assert_type(greet("ann", punct="?"), str)
    assert_type(total("sum=", 1, 2, 3), str)
    assert_type(big_size(1), str)
    assert_type(find_thing(1), str)
    greet("ann", 1)  # type: ignore[arg-type]
    total("sum=", "1")  # type: ignore[arg-type]
    procedure(errors={"P0002": 42})  # type: ignore[dict-item]


@procedure("get_member", readonly=True)
def read_member(id: int) -> Member | None: ...


@procedure("partman.run_maintenance_proc", autocommit=True)
def run_maintenance(p_wait: int = DEFAULT) -> None: ...


def transaction_control() -> None:
    with session("postgresql:///app", autocommit=True):
        assert_type(run_maintenance(), None)
    procedure(autocommit="yes")  # type: ignore[call-overload]


def services() -> None:
    with Database("postgresql:///app", replica="postgresql:///replica") as db, session(db):
        assert_type(read_member(1), Member | None)
        assert_type(db.counters, Counters)
    with session("postgresql:///app", replica="postgresql:///replica"):
        pass
    assert_type(check(["app.db"], "postgresql:///app"), list[Problem])
    Database("postgresql:///app", max_size="10")  # type: ignore[arg-type]
    session(db, replica=42)  # type: ignore[arg-type]
