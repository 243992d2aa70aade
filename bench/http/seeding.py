"""The data the HTTP bench reads and grows, created through the API itself, and the
GraphQL documents it sends."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

ORDER_QUERY = (
    "query Order($id: ID!) { order(id: $id) { id status version customerName"
    " customer { id name email }"
    " items { productId productName quantity unitPrice { amount currency }"
    " lineTotal { amount currency } product { id name stockAvailable } }"
    " subtotal { amount currency } tax { amount currency } total { amount currency } } }"
)
ADD_ITEM = (
    "mutation Add($input: AddOrderItemInput!) { addOrderItem(input: $input) {"
    " __typename ... on OrderAccepted { orderId version consistencyToken }"
    " ... on UserError { code message } } }"
)
ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"}


class GraphQL:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = await self.http.post(self.url, json={"query": query, "variables": variables})
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise SystemExit(f"seeding failed: {response.status_code} {body}")
        return body["data"]

    async def mutate(
        self, field: str, input_type: str, accepted: str, input: dict[str, Any]
    ) -> dict[str, Any]:
        data = await self(
            f"mutation M($input: {input_type}!) {{ r: {field}(input: $input) {{ __typename"
            f" ... on {accepted} {{ version consistencyToken }}"
            " ... on UserError { code message } } }",
            {"input": input},
        )
        result: dict[str, Any] = data["r"]
        if result["__typename"] != accepted:
            raise SystemExit(f"seeding {field} failed: {result}")
        return result

    async def mutate_all(
        self, field: str, input_type: str, accepted: str, inputs: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """One mutation per input, 16 at a time."""
        return await bounded([self.mutate(field, input_type, accepted, i) for i in inputs])


async def bounded(jobs: Sequence[Any], concurrency: int = 16) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(one(job) for job in jobs))


@dataclass(frozen=True)
class Seeded:
    tag: str
    customers: list[str]
    skus: list[str]
    orders: list[str]


async def seed_orders(base_url: str, orders: int, products: int) -> Seeded:
    """20 customers, `products` products with ample stock, and `orders` orders of 3 items
    each; returns once the projections have caught up and an order reads back whole."""
    tag = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(timeout=60) as http:
        api = GraphQL(http, f"{base_url}/graphql")
        customers = [f"bench-c{n}-{tag}" for n in range(20)]
        await api.mutate_all(
            "registerCustomer",
            "RegisterCustomerInput",
            "CustomerAccepted",
            [
                {"customerId": c, "name": f"Customer {c}", "email": f"{c}@example.com"}
                for c in customers
            ],
        )
        skus = [f"bench-p{n}-{tag}" for n in range(products)]
        await api.mutate_all(
            "addProduct",
            "AddProductInput",
            "ProductAccepted",
            [
                {
                    "productId": sku,
                    "name": f"Product {n}",
                    "price": f"{n % 50 + 1}.{n % 100:02d}",
                    "initialStock": 1_000_000,
                }
                for n, sku in enumerate(skus)
            ],
        )
        order_ids = [f"bench-q{n}-{tag}" for n in range(orders)]
        await create_orders(
            api,
            [
                {
                    "orderId": order_id,
                    "customerId": customers[n % len(customers)],
                    "items": [
                        {"productId": skus[(n + k) % len(skus)], "quantity": k + 1}
                        for k in range(3)
                    ],
                    "shippingAddress": ADDRESS,
                }
                for n, order_id in enumerate(order_ids)
            ],
        )
        sample = await api(ORDER_QUERY, {"id": order_ids[0]})
        order = sample["order"]
        if not order or len(order["items"]) != 3 or not order["customer"]:
            raise SystemExit(f"a seeded order reads back wrong: {sample}")
    return Seeded(tag, customers, skus, order_ids)


async def seed_drafts(base_url: str, seeded: Seeded, drafts: int) -> list[str]:
    """`drafts` empty draft orders for the mutations to grow (made after the query run, so
    that the query reads the same small orders collection whatever `--drafts` is)."""
    async with httpx.AsyncClient(timeout=60) as http:
        api = GraphQL(http, f"{base_url}/graphql")
        order_ids = [f"bench-d{n}-{seeded.tag}" for n in range(drafts)]
        await create_orders(
            api,
            [
                {"orderId": order_id, "customerId": seeded.customers[n % 20]}
                for n, order_id in enumerate(order_ids)
            ],
        )
    return order_ids


async def create_orders(api: GraphQL, inputs: Sequence[dict[str, Any]]) -> None:
    """`createOrder` for each input, then wait until the projections have caught up."""
    await api.mutate_all("createOrder", "CreateOrderInput", "OrderAccepted", inputs)
    await caught_up(api)


async def caught_up(api: GraphQL, limit_seconds: float = 300) -> float:
    """Wait until every projection has applied the whole log; the seconds it took."""
    started = time.monotonic()
    while True:
        data = await api("{ projections { name lag } }")
        if data["projections"] and all(p["lag"] == 0 for p in data["projections"]):
            return time.monotonic() - started
        if time.monotonic() - started > limit_seconds:
            raise SystemExit(f"projections did not catch up in {limit_seconds:.0f} s: {data}")
        await asyncio.sleep(0.2)
