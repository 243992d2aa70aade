"""The access rule at the application layer: random (principal, operation, target) triples
run through the real command bus and the read model as a principal sees it, on the
in-memory adapters. What the test expects is written here plainly, apart from the code:
a customer reaches only its own orders and record, and someone else's answer exactly like
a missing one; only staff and our processes change the catalog or read the operators'
views; everything else is allowed to staff, processes and the open server's anonymous."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.wiring import build_command_bus
from read_model.document_store.memory import InMemoryDocumentStore
from read_model.document_store.port import Document, UpdateMany
from read_model.projections import ALL_PROJECTIONS
from read_model.projections.base import DocKey, ProjectedEvent, View
from read_model.projections.customers import CUSTOMERS
from read_model.projections.orders import ORDERS
from read_model.projections.products import PRODUCTS
from read_model.scoped import OWNERSHIP, Ownership, OwnershipUndeclared, ScopedReadModel
from read_model.service import ReadModel
from tests.projecting import projection_runner
from write_model import commands
from write_model.access import Forbidden
from write_model.bus import CommandBus
from write_model.command_context import ANONYMOUS, CommandContext, Principal
from write_model.domain.errors import DomainError, InvalidState, NotFound
from write_model.domain.order import Address
from write_model.event_store.memory import InMemoryEventStore
from write_model.event_types import build_registry

REGISTRY = build_registry()
OWNERS = {"order-a": "cust-a", "order-b": "cust-b"}  # order -> its customer
ORDER_TARGETS = [*OWNERS, "order-missing"]
CUSTOMER_TARGETS = ["cust-a", "cust-b", "cust-missing"]
ADDRESS = Address("1 Main St", "Springfield", "12345", "US")

PRINCIPALS = st.sampled_from(
    [
        ANONYMOUS,
        Principal.staff("staff-1"),
        Principal.system("saga"),
        Principal.customer("cust-a"),
        Principal.customer("cust-b"),
        Principal.customer("cust-stranger"),  # a valid token, no customer record
    ]
)

# What a customer may never send, whatever the target.
STAFF_ONLY = {
    "AddProduct": lambda target: commands.AddProduct(
        product_id=f"p-{uuid.uuid4().hex[:6]}", name="New", price=Decimal("1")
    ),
    "RenameProduct": lambda target: commands.RenameProduct(product_id="sku", name="Renamed"),
    "ChangeProductPrice": lambda target: commands.ChangeProductPrice(
        product_id="sku", price=Decimal("3")
    ),
    "RestockProduct": lambda target: commands.RestockProduct(product_id="sku", quantity=5),
    "ReserveStock": lambda target: commands.ReserveStock(
        product_id="sku", order_id=target, quantity=1
    ),
    "ConfirmOrder": lambda target: commands.ConfirmOrder(order_id=target),
    "RejectOrder": lambda target: commands.RejectOrder(order_id=target, reason="no"),
}
# Commands on an order (the target), allowed to its customer.
ON_ORDER = {
    "AddOrderItem": lambda target: commands.AddOrderItem(
        order_id=target, product_id="sku", quantity=1
    ),
    "RemoveOrderItem": lambda target: commands.RemoveOrderItem(order_id=target, product_id="sku"),
    "SetShippingAddress": lambda target: commands.SetShippingAddress(
        order_id=target, address=ADDRESS
    ),
    "SubmitOrder": lambda target: commands.SubmitOrder(order_id=target),
    "CancelOrder": lambda target: commands.CancelOrder(order_id=target),
}
# Commands for a customer (the target).
FOR_CUSTOMER = {
    "CreateOrder": lambda target: commands.CreateOrder(
        customer_id=target, items=(commands.OrderItem("sku", 1),)
    ),
    "RenameCustomer": lambda target: commands.RenameCustomer(customer_id=target, name="Renamed"),
}


def allowed_to_reach(principal: Principal, customer_id: str | None) -> bool:
    """The rule, as the issue states it."""
    return principal.kind.value != "CUSTOMER" or principal.id == customer_id


@dataclass
class World:
    bus: CommandBus
    events: InMemoryEventStore
    documents: InMemoryDocumentStore
    read_model: ReadModel

    async def head(self) -> Any:
        return await self.events.head_position()

    async def project(self) -> None:
        for projection in ALL_PROJECTIONS:
            runner = projection_runner(projection, self.events, self.documents, REGISTRY)
            while (await runner.step()).events_read:
                pass


async def world() -> World:
    events, documents = InMemoryEventStore(), InMemoryDocumentStore()
    bus = build_command_bus(events, REGISTRY, tax_rate=Decimal("0.1"))
    staff = CommandContext("setup", principal=Principal.staff("setup"))
    await bus.dispatch(
        commands.AddProduct(product_id="sku", name="Tea", price=Decimal("2"), initial_stock=50),
        staff,
    )
    for order_id, customer_id in OWNERS.items():
        await bus.dispatch(
            commands.RegisterCustomer(
                customer_id=customer_id, name=customer_id, email=f"{customer_id}@example.com"
            ),
            staff,
        )
        await bus.dispatch(
            commands.CreateOrder(
                order_id=order_id, customer_id=customer_id, items=(commands.OrderItem("sku", 1),)
            ),
            staff,
        )
    read_model = ReadModel(
        documents, events, wait_seconds=1, poll_seconds=0.01, version_ttl_seconds=0
    )
    made = World(bus, events, documents, read_model)
    await made.project()
    return made


async def outcome(run: Callable[[], Awaitable[Any]]) -> Exception | None:
    try:
        await run()
    except (DomainError, Forbidden) as error:
        return error
    return None


COMMAND_CASES = st.one_of(
    st.tuples(st.sampled_from(sorted(STAFF_ONLY)), st.sampled_from(ORDER_TARGETS)),
    st.tuples(st.sampled_from(sorted(ON_ORDER)), st.sampled_from(ORDER_TARGETS)),
    st.tuples(st.sampled_from(sorted(FOR_CUSTOMER)), st.sampled_from(CUSTOMER_TARGETS)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(principal=PRINCIPALS, case=COMMAND_CASES)
async def test_a_command_reaches_only_what_its_principal_may(
    principal: Principal, case: tuple[str, str]
) -> None:
    name, target = case
    made = await world()
    make = {**STAFF_ONLY, **ON_ORDER, **FOR_CUSTOMER}[name]
    before = await made.head()

    refused = await outcome(
        lambda: made.bus.dispatch(make(target), CommandContext("test", principal=principal))
    )

    if name in STAFF_ONLY and principal.kind.value == "CUSTOMER":
        assert isinstance(refused, Forbidden), refused
        assert await made.head() == before, "a refused command appended nothing"
        return
    owner = OWNERS.get(target) if name in ON_ORDER else target
    if name in FOR_CUSTOMER and target == "cust-missing":
        owner = None
    if not allowed_to_reach(principal, owner) or (owner is None and name in FOR_CUSTOMER):
        # Someone else's (or nobody's) answers exactly as a missing one does for staff.
        assert isinstance(refused, NotFound), refused
        missing = "order-missing" if name in ON_ORDER else "cust-missing"
        as_missing = await outcome(
            lambda: made.bus.dispatch(make(missing), CommandContext("test", principal=ANONYMOUS))
        )
        assert isinstance(as_missing, NotFound)
        assert str(refused) == str(as_missing).replace(missing, target)
        assert await made.head() == before, "a refused command appended nothing"
        return
    # Allowed: whatever the domain says, it is not the access rule refusing.
    assert not isinstance(refused, Forbidden), refused
    if isinstance(refused, NotFound):
        assert target.endswith("missing") or name in STAFF_ONLY, refused


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(principal=PRINCIPALS, chosen=st.sampled_from(ORDER_TARGETS))
async def test_a_taken_order_id_tells_a_customer_nothing_of_whose_order_it_is(
    principal: Principal, chosen: str
) -> None:
    made = await world()
    customer_id = principal.id if principal.kind.value == "CUSTOMER" else "cust-a"
    assert customer_id is not None
    context = CommandContext("test", principal=principal)

    def create(order_id: str) -> commands.CreateOrder:
        return commands.CreateOrder(
            order_id=order_id, customer_id=customer_id, items=(commands.OrderItem("sku", 1),)
        )

    before = await made.head()
    refused = await outcome(lambda: made.bus.dispatch(create(chosen), context))

    if chosen not in OWNERS:  # a free id is the customer's to take
        if customer_id == "cust-stranger":
            assert isinstance(refused, NotFound) and "customer" in str(refused)
        else:
            assert refused is None
        return
    assert refused is not None and await made.head() == before
    if principal.kind.value != "CUSTOMER":
        # Staff, processes and the open server's anonymous get the precise reason.
        assert isinstance(refused, InvalidState), refused
        assert str(refused) == f"order {chosen} already exists"
        return
    # To a customer, its own order's id and another's answer alike, and neither says that
    # an order exists.
    other = next(order_id for order_id in OWNERS if order_id != chosen)
    compared = await outcome(lambda: made.bus.dispatch(create(other), context))
    assert type(refused) is type(compared)
    assert str(refused) == str(compared).replace(other, chosen)
    assert "exist" not in str(refused)
    assert OWNERS[chosen] not in str(refused) and OWNERS[other] not in str(compared)


READS = st.sampled_from(
    ["get_order", "orders_of", "orders_batch", "get_customer", "customers", "statuses"]
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(principal=PRINCIPALS, read=READS, customer=st.sampled_from(CUSTOMER_TARGETS))
async def test_a_read_shows_only_what_its_principal_may(
    principal: Principal, read: str, customer: str
) -> None:
    made = await world()
    scoped = ScopedReadModel(made.read_model, principal)
    orders_of_customer = [o for o, owner in OWNERS.items() if owner == customer]
    visible_orders = [o for o, owner in OWNERS.items() if allowed_to_reach(principal, owner)]

    match read:
        case "get_order":
            for order_id in ORDER_TARGETS:
                found = await scoped.get(ORDERS, order_id)
                assert (found is not None) == (order_id in visible_orders)
        case "orders_of":
            page = await scoped.find(ORDERS, {"customerId": customer}, [], 10)
            expected = orders_of_customer if allowed_to_reach(principal, customer) else []
            assert sorted(d["_id"] for d in page.documents) == expected
            assert await scoped.count(ORDERS, {"customerId": customer}) == len(expected)
        case "orders_batch":
            found = await scoped.get_many(ORDERS, ORDER_TARGETS)
            assert sorted(found) == visible_orders
            page = await scoped.find(ORDERS, {}, [], 10)
            assert sorted(d["_id"] for d in page.documents) == visible_orders
        case "get_customer":
            found = await scoped.get(CUSTOMERS, customer)
            exists = customer in OWNERS.values()
            assert (found is not None) == (exists and allowed_to_reach(principal, customer))
        case "customers":
            page = await scoped.find(CUSTOMERS, {}, [], 10)
            expected = sorted(c for c in OWNERS.values() if allowed_to_reach(principal, c))
            assert sorted(d["_id"] for d in page.documents) == expected
        case "statuses":
            if principal.kind.value == "CUSTOMER":
                with pytest.raises(Forbidden):
                    await scoped.statuses()
                with pytest.raises(Forbidden):
                    _ = scoped.dead_letters
            else:
                assert {s.name for s in await scoped.statuses()} >= {"orders", "customers"}


# ------------------------------------------------------------- ownership


class WishlistsProjection:
    """A new customer-owned projection whose author forgot to declare `owners`."""

    name = "wishlists"
    collections: tuple[str, ...] = ("wishlists",)

    def handles(self, event_type: str) -> bool:
        return event_type == "OrderCreated"

    def reads(self, event: ProjectedEvent) -> tuple[DocKey, ...]:
        return ()

    def keys(self, event: ProjectedEvent, view: View) -> tuple[DocKey, ...]:
        return (DocKey("wishlists", event.event.customer_id),)

    def evolve(
        self, key: DocKey, doc: Document | None, event: ProjectedEvent, view: View
    ) -> Document:
        return {"_id": key.id, "customerId": key.id, "products": []}

    def effects(self, event: ProjectedEvent) -> list[UpdateMany]:
        return []

    def indexes(self) -> dict[str, list[list[tuple[str, int]]]]:
        return {}


@pytest.mark.parametrize(
    "principal", [Principal.customer("c-1"), Principal.staff("s-1")], ids=["customer", "staff"]
)
async def test_a_collection_whose_projection_declares_no_owner_is_refused(
    principal: Principal,
) -> None:
    made = await world()
    ownership = Ownership((*ALL_PROJECTIONS, WishlistsProjection()))
    scoped = ScopedReadModel(made.read_model, principal, ownership)

    assert ownership.undeclared == ["wishlists"]
    reads = [
        lambda: scoped.get("wishlists", "c-1"),
        lambda: scoped.get_many("wishlists", ["c-1"]),
        lambda: scoped.find("wishlists", {}, [], 10),
        lambda: scoped.count("wishlists", {}),
    ]
    for read in reads:
        with pytest.raises(OwnershipUndeclared, match="wishlists"):
            await read()
    # The declared collections read as before.
    assert await scoped.count(PRODUCTS, {}) == 1


async def test_every_collection_of_the_projections_declares_its_owner() -> None:
    made = await world()

    assert OWNERSHIP.undeclared == []
    # A customer reads the public catalog, and its own orders and customer only.
    scoped = ScopedReadModel(made.read_model, Principal.customer(CUSTOMER_TARGETS[0]))
    assert [doc["_id"] for doc in (await scoped.find(PRODUCTS, {}, [], 10)).documents] == ["sku"]
    owned = {doc["customerId"] for doc in (await scoped.find(ORDERS, {}, [], 10)).documents} | {
        doc["_id"] for doc in (await scoped.find(CUSTOMERS, {}, [], 10)).documents
    }
    assert owned == {CUSTOMER_TARGETS[0]}
