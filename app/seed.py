"""`orders seed`: a small demo catalog and a few customers, through the same command path
as the GraphQL mutations (the application layer, events in the event store; the projector
makes the read documents).

Idempotent: every command carries an idempotency key derived from what it seeds, so a
second run replays the first run's outcomes and appends nothing. Fixed ids make the demo
data easy to query (`product(id: "demo-espresso")`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

import orjson

from write_model.application import OrdersApplication
from write_model.handling import CommandContext, CommandOutcome, Idempotency

SEED_CORRELATION_ID = "orders-seed"


@dataclass(frozen=True)
class DemoProduct:
    product_id: str
    name: str
    price: Decimal
    stock: int
    currency: str = "USD"


@dataclass(frozen=True)
class DemoCustomer:
    customer_id: str
    name: str
    email: str


PRODUCTS = (
    DemoProduct("demo-espresso", "Espresso beans, 1 kg", Decimal("24.90"), 120),
    DemoProduct("demo-grinder", "Burr grinder", Decimal("149.00"), 15),
    DemoProduct("demo-kettle", "Gooseneck kettle", Decimal("59.50"), 30),
    DemoProduct("demo-mug", "Stoneware mug", Decimal("12.00"), 200),
    DemoProduct("demo-filter", "Paper filters, 100", Decimal("6.75"), 500),
)

CUSTOMERS = (
    DemoCustomer("demo-ada", "Ada Lovelace", "ada@example.com"),
    DemoCustomer("demo-grace", "Grace Hopper", "grace@example.com"),
    DemoCustomer("demo-alan", "Alan Turing", "alan@example.com"),
)


@dataclass(frozen=True)
class SeedReport:
    added: int  # commands that appended events this run
    already_there: int  # commands replayed from an earlier run

    def summary(self) -> str:
        if self.added == 0:
            return f"demo data already there ({self.already_there} items): nothing added"
        return (
            f"demo data added: {len(PRODUCTS)} products and {len(CUSTOMERS)} customers "
            f"({self.added} new, {self.already_there} already there)"
        )


def _idempotency(kind: str, item: object) -> Idempotency:
    payload = orjson.dumps(item, option=orjson.OPT_SORT_KEYS, default=str)
    fingerprint = hashlib.sha256(kind.encode() + b"\n" + payload).hexdigest()
    return Idempotency(f"seed:{kind}:{getattr(item, kind + '_id')}", fingerprint)


async def seed(application: OrdersApplication) -> SeedReport:
    """Add the demo data that is not there yet."""
    context = CommandContext(correlation_id=SEED_CORRELATION_ID)
    outcomes: list[CommandOutcome] = []
    for item in PRODUCTS:
        outcomes.append(
            await application.add_product(
                item.product_id,
                item.name,
                item.price,
                item.currency,
                item.stock,
                context,
                _idempotency("product", item),
            )
        )
    for person in CUSTOMERS:
        outcomes.append(
            await application.register_customer(
                person.customer_id,
                person.name,
                person.email,
                context,
                _idempotency("customer", person),
            )
        )
    already_there = sum(outcome.replayed for outcome in outcomes)
    return SeedReport(added=len(outcomes) - already_there, already_there=already_there)
