"""The bench's event log: realistic domain events, built through the order decider and
appended with concurrent appends, one per order stream.

A seed plan holds customers with their email reservations, products, orders created / 3
items / shipping address / submitted (half of them confirmed) in one append each, and a few
customer and product renames in between; the lag runs append orders in several appends
(`paced_order_appends`).
"""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from write_model import stream_ids
from write_model.domain import customer, order, product
from write_model.domain.money import Money
from write_model.domain.order import Address, PricedItem
from write_model.envelope import EventMetadata, NewEvent
from write_model.event_store import postgres
from write_model.event_store.port import ANY, NO_STREAM, ExpectedVersion
from write_model.registry import EventTypeRegistry

ADDRESS = Address("1 Main St", "Springfield", "12345", "US")
TAX_RATE = Decimal("0.10")


@dataclass
class Append:
    stream_id: str
    stream_type: str
    expected: ExpectedVersion
    events: list[NewEvent]
    order_id: str | None = None  # set on order appends: lag is keyed by (order id, version)


@dataclass
class Catalog:
    customers: list[str]
    products: list[tuple[str, str, Money]]  # id, name, price


class EventFactory:
    """Domain events -> NewEvents, as the command handler serializes them."""

    def __init__(self, registry: EventTypeRegistry, correlation_id: str) -> None:
        self._registry = registry
        self._correlation_id = correlation_id
        self._clock = datetime.now(UTC) - timedelta(days=30)

    def new(self, events: Sequence[object]) -> list[NewEvent]:
        out = []
        for event in events:
            type_name, data, schema_version = self._registry.serialize(event)
            self._clock += timedelta(milliseconds=7)
            out.append(
                NewEvent(
                    uuid.uuid4(),
                    type_name,
                    data,
                    EventMetadata(self._correlation_id, schema_version=schema_version),
                    self._clock,
                )
            )
        return out


def decided(commands: Sequence[order.OrderCommand]) -> list[list[order.OrderEvent]]:
    """Each order command's events, through the domain's own decide/evolve."""
    state: order.OrderState = None
    per_command = []
    for command in commands:
        events = order.decide(command, state)
        for event in events:
            state = order.evolve(state, event)
        per_command.append(events)
    return per_command


def catalog_appends(
    factory: EventFactory, customers: int, products: int, rng: random.Random
) -> tuple[Catalog, list[Append]]:
    appends: list[Append] = []
    customer_ids = [f"c{n:05d}" for n in range(customers)]
    for customer_id in customer_ids:
        email = f"{customer_id}@example.com"
        appends.append(
            Append(
                stream_ids.stream_id(customer.EMAIL_STREAM_TYPE, email),
                customer.EMAIL_STREAM_TYPE,
                NO_STREAM,
                factory.new([customer.CustomerEmailReserved(email, customer_id)]),
            )
        )
        appends.append(
            Append(
                stream_ids.stream_id(customer.STREAM_TYPE, customer_id),
                customer.STREAM_TYPE,
                NO_STREAM,
                factory.new(
                    [customer.CustomerRegistered(customer_id, f"Customer {customer_id}", email)]
                ),
            )
        )
    entries = []
    for n in range(products):
        product_id = f"p{n:04d}"
        price = Money(Decimal(rng.randrange(100, 10_000)) / 100, "USD")
        entries.append((product_id, f"Product {n}", price))
        appends.append(
            Append(
                stream_ids.stream_id(product.STREAM_TYPE, product_id),
                product.STREAM_TYPE,
                NO_STREAM,
                factory.new([product.ProductAdded(product_id, f"Product {n}", price, 1_000_000)]),
            )
        )
    return Catalog(customer_ids, entries), appends


def whole_order_append(
    factory: EventFactory, catalog: Catalog, order_id: str, rng: random.Random, confirm: bool
) -> Append:
    """Created, 3 items, shipping address, submitted (and maybe confirmed): one append."""
    items = rng.sample(catalog.products, 3)
    commands: list[order.OrderCommand] = [
        order.CreateOrder(order_id, rng.choice(catalog.customers), TAX_RATE),
        *(
            order.AddOrderItem(order_id, PricedItem(pid, name, rng.randint(1, 5), price))
            for pid, name, price in items
        ),
        order.SetShippingAddress(order_id, ADDRESS),
        order.SubmitOrder(order_id),
    ]
    if confirm:
        commands.append(order.ConfirmOrder(order_id))
    events = [e for per_command in decided(commands) for e in per_command]
    return Append(
        stream_ids.stream_id(order.STREAM_TYPE, order_id),
        order.STREAM_TYPE,
        NO_STREAM,
        factory.new(events),
    )


def paced_order_appends(
    factory: EventFactory, catalog: Catalog, order_id: str, rng: random.Random
) -> list[Append]:
    """5 events in 4 appends: create with a shipping address, then 3 x add item."""
    items = rng.sample(catalog.products, 3)
    per_command = decided(
        [
            order.CreateOrder(
                order_id, rng.choice(catalog.customers), TAX_RATE, shipping_address=ADDRESS
            ),
            *(
                order.AddOrderItem(order_id, PricedItem(pid, name, rng.randint(1, 5), price))
                for pid, name, price in items
            ),
        ]
    )
    stream_id = stream_ids.stream_id(order.STREAM_TYPE, order_id)
    appends = []
    version = 0
    for events in per_command:
        expected: ExpectedVersion = version if version else NO_STREAM
        appends.append(
            Append(stream_id, order.STREAM_TYPE, expected, factory.new(events), order_id)
        )
        version += len(events)
    return appends


@dataclass
class SeedPlan:
    catalog: Catalog
    catalog_appends: list[Append]
    # Order appends in chunks; after each chunk, the renames that follow it in the log.
    chunks: list[tuple[list[Append], list[Append]]] = field(default_factory=list)
    orders: int = 0
    renames: int = 0

    @property
    def events(self) -> int:
        appends = [*self.catalog_appends]
        for orders, renames in self.chunks:
            appends += orders + renames
        return sum(len(a.events) for a in appends)


def seed_plan(target_events: int, registry: EventTypeRegistry, seed: int = 7) -> SeedPlan:
    rng = random.Random(seed)
    factory = EventFactory(registry, "bench-read-seed")
    customers = max(10, target_events // 100)
    products = max(10, target_events // 500)
    customer_renames = max(2, target_events // 5_000)
    product_renames = max(2, target_events // 10_000)
    catalog, appends = catalog_appends(factory, customers, products, rng)
    remaining = target_events - 2 * customers - products - customer_renames - product_renames
    orders = max(1, round(remaining / 6.5))  # 6 events, 7 when confirmed (half of them)
    plan = SeedPlan(catalog, appends, orders=orders, renames=customer_renames + product_renames)
    chunk_count = max(1, min(20, orders // 50))
    renames: list[Append] = []
    for n in range(customer_renames):
        customer_id = rng.choice(catalog.customers)
        renames.append(
            Append(
                stream_ids.stream_id(customer.STREAM_TYPE, customer_id),
                customer.STREAM_TYPE,
                ANY,
                factory.new([customer.CustomerRenamed(f"Customer {customer_id} renamed {n}")]),
            )
        )
    for n in range(product_renames):
        product_id, name, _ = rng.choice(catalog.products)
        renames.append(
            Append(
                stream_ids.stream_id(product.STREAM_TYPE, product_id),
                product.STREAM_TYPE,
                ANY,
                factory.new([product.ProductRenamed(f"{name} renamed {n}")]),
            )
        )
    rng.shuffle(renames)
    per_chunk = math.ceil(orders / chunk_count)
    renames_per_chunk = math.ceil(len(renames) / chunk_count)
    for c in range(chunk_count):
        chunk = [
            whole_order_append(factory, catalog, f"o{n:07d}", rng, confirm=n % 2 == 0)
            for n in range(c * per_chunk, min(orders, (c + 1) * per_chunk))
        ]
        plan.chunks.append((chunk, renames[c * renames_per_chunk : (c + 1) * renames_per_chunk]))
    return plan


async def append_all(
    store: postgres.PostgresEventStore, appends: Sequence[Append], concurrency: int
) -> None:
    pending: Iterator[Append] = iter(appends)

    async def worker() -> None:
        for a in pending:
            await store.append_to_stream(a.stream_id, a.stream_type, a.expected, a.events)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def seed(store: postgres.PostgresEventStore, plan: SeedPlan, concurrency: int) -> None:
    await append_all(store, plan.catalog_appends, concurrency)
    for orders, renames in plan.chunks:
        await append_all(store, orders, concurrency)
        await append_all(store, renames, 1)
    # The log as it is in service, where autovacuum has long been through it: the planner's
    # statistics, and the pages vacuumed (their rows marked visible to all). Without the
    # vacuum, the first read of each page sets its rows' hint bits, writing the page, and an
    # autovacuum the inserts set off may run during the measurement.
    await store.pool.execute("VACUUM (ANALYZE) events")
