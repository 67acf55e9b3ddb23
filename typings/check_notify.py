"""What checkers infer from notify and listen stubs, and the misuse they reject."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from typing_extensions import assert_type

from pgdecor import AsyncListener, Database, Listener, Missed, listen, notify, session


@dataclass
class OrderPlaced:
    id: int


@notify("orders")
def order_placed(event: OrderPlaced) -> None: ...


@notify("orders")
async def aorder_placed(event: OrderPlaced) -> None: ...


@listen("orders")
def orders(db: Database | str) -> Iterator[OrderPlaced | Missed]: ...


@listen("orders", check_every=5, undecodable="raise")
def aorders(db: Database | str) -> AsyncIterator[OrderPlaced | Missed]: ...


def sending() -> None:
    with session("postgresql:///app"):
        assert_type(order_placed(OrderPlaced(1)), None)
        assert_type(order_placed(event=OrderPlaced(1)), None)
        order_placed("1")  # type: ignore[arg-type]
        order_placed(OrderPlaced(1), OrderPlaced(2))  # type: ignore[call-arg]


async def sending_async() -> None:
    async with session("postgresql:///app"):
        assert_type(await aorder_placed(OrderPlaced(1)), None)


def receiving() -> None:
    with orders("postgresql:///app") as events:
        assert_type(events, Listener[OrderPlaced | Missed])
        for event in events:
            assert_type(event, OrderPlaced | Missed)
            if isinstance(event, Missed):
                assert_type(event.reason, str)
            else:
                assert_type(event.id, int)
        assert_type(events.received, int)
        assert_type(events.backend_pid, int | None)
    orders(42)  # type: ignore[arg-type]


async def receiving_async() -> None:
    async with aorders("postgresql:///app") as events:
        assert_type(events, AsyncListener[OrderPlaced | Missed])
        async for event in events:
            assert_type(event, OrderPlaced | Missed)
    await events.aclose()


def counted(event: OrderPlaced) -> int:
    return event.id


def misuse() -> None:
    listen("orders", undecodable="ignore")  # type: ignore[arg-type]
    notify("orders")(counted)  # type: ignore[arg-type]
