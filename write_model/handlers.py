"""One handler per command: what it looks up, and which decider decides what on which stream.

A handler reads what the domain needs from other aggregates (catalog prices and names, the
customer's existence) and returns a `Decision`; it appends nothing. The bus runs every
Decision through the same load-decide-append pipeline (write_model/bus.py).
`command_handlers` is the bus's table: command type -> handler.

Handlers also apply the access rule to what they load (write_model/access.py): an order or a
customer the principal may not act for is refused with the same NotFound a missing one gets,
and a customer's `createOrder` with a taken order id gets one answer whoever owns the order.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from types import ModuleType
from typing import Any

from write_model import access, commands
from write_model.bus import Handler, Lookup
from write_model.decide_and_append import Decision
from write_model.domain import customer, order, product
from write_model.domain.errors import NotFound, ValidationFailed
from write_model.domain.money import DEFAULT_CURRENCY, Money
from write_model.snapshots import dataclass_snapshots
from write_model.streams import Decider


def _snapshotted(domain: ModuleType, state: type, schema_version: int) -> Decider[Any, Any, Any]:
    """The decider of a domain module whose state is loaded from snapshots. Raise
    `schema_version` whenever the state's dataclasses change shape (write_model/snapshots.py)."""
    return Decider(
        domain.STREAM_TYPE,
        domain.decide,
        domain.evolve,
        domain.initial_state,
        dataclass_snapshots(state, schema_version),
    )


ORDER = _snapshotted(order, order.Order, schema_version=1)
CUSTOMER = _snapshotted(customer, customer.Customer, schema_version=1)
CUSTOMER_EMAIL = Decider(
    customer.EMAIL_STREAM_TYPE,
    customer.decide_email,
    customer.evolve_email,
    customer.email_initial_state,
)
PRODUCT = _snapshotted(product, product.Product, schema_version=1)


def command_handlers(*, tax_rate: Decimal) -> Mapping[type, Handler]:
    """`tax_rate`: recorded on each new order (a setting, passed in)."""
    return {
        commands.RegisterCustomer: register_customer,
        commands.RenameCustomer: rename_customer,
        commands.AddProduct: add_product,
        commands.RenameProduct: rename_product,
        commands.ChangeProductPrice: change_product_price,
        commands.RestockProduct: restock_product,
        commands.ReserveStock: reserve_stock,
        commands.ReleaseStockReservation: release_stock_reservation,
        commands.ShipReservedStock: ship_reserved_stock,
        commands.ReturnShippedStock: return_shipped_stock,
        commands.CreateOrder: functools.partial(create_order, tax_rate=tax_rate),
        commands.AddOrderItem: add_order_item,
        commands.RemoveOrderItem: remove_order_item,
        commands.SetShippingAddress: set_shipping_address,
        commands.SubmitOrder: submit_order,
        commands.CancelOrder: cancel_order,
        commands.ConfirmOrder: confirm_order,
        commands.RejectOrder: reject_order,
    }


# --------------------------------------------------------------- customers


async def register_customer(command: commands.RegisterCustomer, lookup: Lookup) -> Decision:
    customer_id = command.customer_id or (
        lookup.new_entity_id() if access.sees_everything(lookup.principal) else lookup.principal.id
    )
    assert customer_id is not None
    if not access.may_act_for(lookup.principal, customer_id):
        raise access.Forbidden("a customer registers only itself (its token's subject)")
    register = customer.RegisterCustomer(customer_id, command.name, command.email)
    loaded = await lookup.load(CUSTOMER, customer_id)
    # Validate and refuse a second registration before the email is reserved for it.
    customer.decide(register, loaded[0])
    email_key = customer.email_stream_key(command.email)
    reserve = customer.ReserveCustomerEmail(email_key, customer_id)
    return Decision(
        CUSTOMER,
        customer_id,
        register,
        loaded=loaded,
        before=(Decision(CUSTOMER_EMAIL, email_key, reserve),),
    )


async def rename_customer(command: commands.RenameCustomer, lookup: Lookup) -> Decision:
    if not access.may_act_for(lookup.principal, command.customer_id):
        raise NotFound(f"customer {command.customer_id} not found", command.customer_id)
    rename = customer.RenameCustomer(command.customer_id, command.name)
    return Decision(
        CUSTOMER, command.customer_id, rename, expected_version=command.expected_version
    )


# ---------------------------------------------------------------- products


async def add_product(command: commands.AddProduct, lookup: Lookup) -> Decision:
    price = Money(command.price, command.currency)
    add = product.AddProduct(command.product_id, command.name, price, command.initial_stock)
    return Decision(PRODUCT, command.product_id, add)


async def rename_product(command: commands.RenameProduct, lookup: Lookup) -> Decision:
    rename = product.RenameProduct(command.product_id, command.name)
    return Decision(PRODUCT, command.product_id, rename, expected_version=command.expected_version)


async def change_product_price(command: commands.ChangeProductPrice, lookup: Lookup) -> Decision:
    loaded = await lookup.load(PRODUCT, command.product_id)
    state = loaded[0]
    # The currency stays the product's; the decider refuses a mismatch.
    currency = state.price.currency if state is not None else DEFAULT_CURRENCY
    change = product.ChangeProductPrice(command.product_id, Money(command.price, currency))
    return Decision(
        PRODUCT,
        command.product_id,
        change,
        expected_version=command.expected_version,
        loaded=loaded,
    )


async def restock_product(command: commands.RestockProduct, lookup: Lookup) -> Decision:
    restock = product.RestockProduct(command.product_id, command.quantity)
    return Decision(PRODUCT, command.product_id, restock)


async def reserve_stock(command: commands.ReserveStock, lookup: Lookup) -> Decision:
    reserve = product.ReserveStock(command.product_id, command.order_id, command.quantity)
    return Decision(PRODUCT, command.product_id, reserve)


async def release_stock_reservation(
    command: commands.ReleaseStockReservation, lookup: Lookup
) -> Decision:
    release = product.ReleaseStockReservation(command.product_id, command.order_id)
    return Decision(PRODUCT, command.product_id, release)


async def ship_reserved_stock(command: commands.ShipReservedStock, lookup: Lookup) -> Decision:
    ship = product.ShipReservedStock(command.product_id, command.order_id)
    return Decision(PRODUCT, command.product_id, ship)


async def return_shipped_stock(command: commands.ReturnShippedStock, lookup: Lookup) -> Decision:
    give_back = product.ReturnShippedStock(command.product_id, command.order_id)
    return Decision(PRODUCT, command.product_id, give_back)


# ------------------------------------------------------------------ orders


async def create_order(
    command: commands.CreateOrder, lookup: Lookup, *, tax_rate: Decimal
) -> Decision:
    order_id = command.order_id or lookup.new_entity_id()
    # One read for the customer, the order stream and the catalog entries.
    (registered, _), current_order, *entries = await lookup.load_many(
        [
            (CUSTOMER, command.customer_id),
            (ORDER, order_id),
            *((PRODUCT, item.product_id) for item in command.items),
        ]
    )
    if registered is None or not access.may_act_for(lookup.principal, command.customer_id):
        raise NotFound(f"customer {command.customer_id} not found", command.customer_id)
    priced = tuple(
        _priced(item, entry) for item, (entry, _) in zip(command.items, entries, strict=True)
    )
    if current_order[0] is not None and not access.sees_everything(lookup.principal):
        # A chosen id that is taken, by its own order or anyone else's: refusing it tells a
        # customer that much whatever it says, so it says only that, alike for both.
        raise ValidationFailed(
            f"order id {order_id} cannot be used: choose another, or leave orderId out "
            "and the server picks one",
            "orderId",
        )
    create = order.CreateOrder(
        order_id, command.customer_id, tax_rate, priced, command.shipping_address
    )
    return Decision(ORDER, order_id, create, loaded=current_order)


async def add_order_item(command: commands.AddOrderItem, lookup: Lookup) -> Decision:
    (entry, _), current_order = await lookup.load_many(
        [(PRODUCT, command.product_id), (ORDER, command.order_id)]
    )
    _check_owner(lookup, current_order, command.order_id)
    item = _priced(commands.OrderItem(command.product_id, command.quantity), entry)
    add = order.AddOrderItem(command.order_id, item)
    return Decision(
        ORDER,
        command.order_id,
        add,
        expected_version=command.expected_version,
        loaded=current_order,
    )


async def remove_order_item(command: commands.RemoveOrderItem, lookup: Lookup) -> Decision:
    loaded = await _owned_order(lookup, command.order_id)
    remove = order.RemoveOrderItem(command.order_id, command.product_id)
    return Decision(
        ORDER,
        command.order_id,
        remove,
        expected_version=command.expected_version,
        loaded=loaded,
    )


async def set_shipping_address(command: commands.SetShippingAddress, lookup: Lookup) -> Decision:
    loaded = await _owned_order(lookup, command.order_id)
    set_address = order.SetShippingAddress(command.order_id, command.address)
    return Decision(
        ORDER,
        command.order_id,
        set_address,
        expected_version=command.expected_version,
        loaded=loaded,
    )


async def submit_order(command: commands.SubmitOrder, lookup: Lookup) -> Decision:
    loaded = await _owned_order(lookup, command.order_id)
    submit = order.SubmitOrder(command.order_id)
    return Decision(
        ORDER,
        command.order_id,
        submit,
        expected_version=command.expected_version,
        loaded=loaded,
    )


async def cancel_order(command: commands.CancelOrder, lookup: Lookup) -> Decision:
    loaded = await _owned_order(lookup, command.order_id)
    cancel = order.CancelOrder(command.order_id, command.reason)
    return Decision(
        ORDER,
        command.order_id,
        cancel,
        expected_version=command.expected_version,
        loaded=loaded,
    )


async def confirm_order(command: commands.ConfirmOrder, lookup: Lookup) -> Decision:
    return Decision(ORDER, command.order_id, order.ConfirmOrder(command.order_id))


async def reject_order(command: commands.RejectOrder, lookup: Lookup) -> Decision:
    reject = order.RejectOrder(command.order_id, command.reason)
    return Decision(ORDER, command.order_id, reject)


async def _owned_order(lookup: Lookup, order_id: str) -> tuple[Any, int]:
    """The order's (state, version) once the principal may act on it; else NotFound, as
    for a missing order (the decider would say the same of one)."""
    loaded = await lookup.load(ORDER, order_id)
    _check_owner(lookup, loaded, order_id)
    return loaded


def _check_owner(lookup: Lookup, loaded: tuple[Any, int], order_id: str) -> None:
    state = loaded[0]
    if not access.may_act_for(lookup.principal, state.customer_id if state else None):
        if state is None and access.sees_everything(lookup.principal):
            return  # the decider says NotFound itself, or creates it
        raise NotFound(f"order {order_id} not found", order_id)


def _priced(item: commands.OrderItem, entry: product.ProductState) -> order.PricedItem:
    """The catalog's current name and price: the sender never gives a price."""
    if item.quantity <= 0:
        raise ValidationFailed(
            f"quantity must be a positive whole number, got {item.quantity}", "quantity"
        )
    if entry is None:
        raise NotFound(f"product {item.product_id} not found", item.product_id)
    return order.PricedItem(entry.product_id, entry.name, item.quantity, entry.price)
