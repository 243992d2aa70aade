"""The command bus as the composition root builds it, over any EventStore adapter."""

from __future__ import annotations

from decimal import Decimal

from app.wiring import build_command_bus
from write_model import commands
from write_model.bus import CommandBus
from write_model.command_context import CommandContext
from write_model.event_store.port import EventStore
from write_model.event_types import build_registry

TAX_RATE = Decimal("0.10")


def build_bus(store: EventStore, *, max_attempts: int = 10, snapshot_every: int = 0) -> CommandBus:
    return build_command_bus(
        store,
        build_registry(),
        tax_rate=TAX_RATE,
        max_attempts=max_attempts,
        snapshot_every=snapshot_every,
    )


async def customer_and_product(
    bus: CommandBus, context: CommandContext, unique: str, *, price: str, stock: int
) -> None:
    """Customer `c-<unique>` and product `p-<unique>`."""
    register = commands.RegisterCustomer(
        customer_id=f"c-{unique}", name="Ada", email=f"{unique}@example.com"
    )
    await bus.dispatch(register, context)
    add = commands.AddProduct(
        product_id=f"p-{unique}", name="Ink", price=Decimal(price), initial_stock=stock
    )
    await bus.dispatch(add, context)


def one_item_order(unique: str, quantity: int) -> commands.CreateOrder:
    """Order `o-<unique>` of `quantity` x `p-<unique>` for `c-<unique>`."""
    item = commands.OrderItem(f"p-{unique}", quantity)
    return commands.CreateOrder(order_id=f"o-{unique}", customer_id=f"c-{unique}", items=(item,))
