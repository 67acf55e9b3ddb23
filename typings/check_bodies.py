"""Stub bodies every checker accepts, generic (polymorphic) stubs and union parameters, as users write them."""

import ipaddress
from typing import TypeVar

from typing_extensions import assert_type

from pgdecor import procedure, query

T = TypeVar("T")


@query("SELECT 1")
def one() -> int:
    raise NotImplementedError


@procedure
def first_of(a: list[T] | None) -> T | None: ...


@procedure
def host(h: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str: ...


assert_type(one(), int)
assert_type(first_of([1, 2]), int | None)  # pyrefly: ignore[assert-type]
assert_type(first_of(["a"]), str | None)  # pyrefly: ignore[assert-type]
host(ipaddress.ip_address("::1"))
host("10.0.0.1")  # type: ignore[arg-type]
