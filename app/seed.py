"""`orders seed`: a small demo catalog and a few customers, sent as the GraphQL mutations a
client would send, to the API running in process (its lifespan opens the same stores
`orders api` or `orders dev` would), so the demo data takes the normal command path.

Idempotent: every mutation carries an idempotency key derived from what it seeds, so a
second run replays the first run's results and appends nothing. Fixed ids make the demo
data easy to query (`product(id: "demo-espresso")`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import httpx
import orjson

from app.api_runtime import authenticator
from app.settings import Settings
from app.stores import require_services
from write_model.domain.money import DEFAULT_CURRENCY


@dataclass(frozen=True)
class DemoProduct:
    product_id: str
    name: str
    price: Decimal
    stock: int
    currency: str = DEFAULT_CURRENCY


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

# Her payments are declined by the simulated gateway (PAYMENT_DECLINE_CUSTOMERS' default),
# so an order of hers shows a rejection and its compensation.
DECLINED_CUSTOMER = DemoCustomer("demo-declined", "Dana Declined", "dana@example.com")

CUSTOMERS = (
    DemoCustomer("demo-ada", "Ada Lovelace", "ada@example.com"),
    DemoCustomer("demo-grace", "Grace Hopper", "grace@example.com"),
    DemoCustomer("demo-alan", "Alan Turing", "alan@example.com"),
    DECLINED_CUSTOMER,
)


def _mutation(field: str, input_type: str) -> str:
    return (
        f"mutation Seed($input: {input_type}!) {{ result: {field}(input: $input) "
        "{ __typename ... on UserError { code message } } }"
    )


ADD_PRODUCT = _mutation("addProduct", "AddProductInput")
REGISTER_CUSTOMER = _mutation("registerCustomer", "RegisterCustomerInput")


class SeedFailed(RuntimeError):
    """The API refused a demo command (for example: the demo email belongs to someone else)."""


def _key(kind: str, item: DemoProduct | DemoCustomer) -> str:
    """Stable per item and content: changed demo data gets a new key, not a refusal."""
    digest = hashlib.sha256(orjson.dumps(asdict(item), default=str)).hexdigest()[:12]
    return f"seed:{kind}:{digest}"


def mutations() -> list[tuple[str, dict[str, Any]]]:
    """Every demo command as (GraphQL document, input)."""
    products = [
        (
            ADD_PRODUCT,
            {
                "productId": item.product_id,
                "name": item.name,
                "price": str(item.price),
                "currency": item.currency,
                "initialStock": item.stock,
                "idempotencyKey": _key("product", item),
            },
        )
        for item in PRODUCTS
    ]
    customers = [
        (
            REGISTER_CUSTOMER,
            {
                "customerId": person.customer_id,
                "name": person.name,
                "email": person.email,
                "idempotencyKey": _key("customer", person),
            },
        )
        for person in CUSTOMERS
    ]
    return products + customers


def _staff_authorization(settings: Settings) -> dict[str, str]:
    """Where auth is on, the demo catalog is added as staff, with a token minted from
    JWT_SECRET (a public key cannot sign one: then seeding is refused, saying so)."""
    auth = authenticator(settings)
    if not auth.enabled:
        return {}
    if not settings.jwt_secret:
        raise SeedFailed(
            "authentication is on with a public key: `orders seed` can sign staff tokens only "
            "with JWT_SECRET"
        )
    return {"Authorization": f"Bearer {auth.mint('orders-seed', staff=True, ttl_seconds=300)}"}


async def seed(settings: Settings) -> str:
    """Send the demo commands; returns a one-line summary."""
    from app.server import create_app

    embedded = not (settings.database_url or settings.mongo_url)
    if not embedded:
        require_services(settings, "orders seed")
    app = create_app(settings, embedded=embedded)
    headers = {"X-Correlation-ID": "orders-seed", **_staff_authorization(settings)}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://orders-seed") as client,
    ):
        for document, variables in mutations():
            response = await client.post(
                "/graphql",
                json={"query": document, "variables": {"input": variables}},
                headers=headers,
            )
            body = response.json()
            result = (body.get("data") or {}).get("result")
            if response.status_code != 200 or result is None:
                raise SeedFailed(f"the API refused a demo command: {body}")
            if not result["__typename"].endswith("Accepted"):
                raise SeedFailed(
                    f"the API refused {variables}: {result.get('code')}: {result.get('message')}"
                )
    summary = (
        f"the demo catalog ({len(PRODUCTS)} products) and {len(CUSTOMERS)} customers are in "
        "place (a second run adds nothing)"
    )
    declined = DECLINED_CUSTOMER.customer_id
    if declined in settings.listed(settings.payment_decline_customers):
        summary += (
            f"; the simulated payment gateway declines every payment of {declined} "
            f"({DECLINED_CUSTOMER.name}: PAYMENT_DECLINE_CUSTOMERS), so her orders are rejected"
        )
    return summary
