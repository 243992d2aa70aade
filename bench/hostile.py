"""What hostile queries cost the server: CPU per request for documents the limits refuse
(target: under 5 ms each) and server time for the worst documents they accept.

In process, on the embedded stores (SQLite event store, in-memory read model), over
httpx's ASGI transport, so CPU time is the server's (plus a thin client):

    python -m bench.hostile [--orders 100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from app.server import create_app
from app.settings import Settings
from bench.common import machine_description, say, verdict

REFUSED_TARGET_MS = 5.0


def fan_out(levels: int, field: str) -> str:
    fragments = [f"fragment F0 on Query {{ {field} }}"] + [
        f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)
    ]
    return f"query FanOut {{ ...F{levels} }}\n" + "\n".join(fragments)


def nested_orders(levels: int, page: int) -> str:
    """customer { orders { edges { node { customer { orders ... `levels` times: depth
    4 * levels + 1."""
    inner = "id"
    for _ in range(levels):
        inner = f"customer {{ orders(first: {page}) {{ edges {{ node {{ {inner} }} }} }} }}"
    return f'{{ order(id: "ORDER") {{ {inner} }} }}'


def wide_orders(aliases: int, page: int) -> str:
    node = (
        "id status version total { amount currency } customer { name }"
        " items { productId quantity unitPrice { amount } }"
    )
    fields = " ".join(
        f"a{n}: orders(first: {page}) {{ edges {{ node {{ {node} }} }} }}" for n in range(aliases)
    )
    return "{ " + fields + " }"


REFUSED = {
    "fragment fan-out, 2**40 aliases": fan_out(40, "a: projections { name }"),
    "depth 13 (limit 10)": nested_orders(3, 1),
    "31 aliases (limit 30)": "{ " + " ".join(f"a{n}: __typename" for n in range(31)) + " }",
    "2100 tokens (limit 2000)": "{ " + " ".join(["__typename"] * 2100) + " }",
    "syntax error": "{ orders { edges { node { id ",
}


async def seed(client: httpx.AsyncClient, orders: int) -> str:
    """One customer with `orders` orders of three lines; returns an order id."""
    uid = uuid.uuid4().hex[:8]
    mutation = """
    mutation($c: RegisterCustomerInput!, $p: AddProductInput!) {
      registerCustomer(input: $c) { __typename } addProduct(input: $p) { __typename } }"""
    customer = f"c-{uid}"
    await post(
        client,
        mutation,
        {
            "c": {"customerId": customer, "name": "Bench", "email": f"{uid}@example.com"},
            "p": {"productId": f"p-{uid}", "name": "Pen", "price": "1.25", "initialStock": 0},
        },
    )
    create = """mutation($o: CreateOrderInput!) {
      createOrder(input: $o) { ... on OrderAccepted { orderId consistencyToken } } }"""
    item = {"productId": f"p-{uid}", "quantity": 1}
    token, order_id = "", ""
    for n in range(orders):
        body = await post(
            client,
            create,
            {"o": {"orderId": f"o-{uid}-{n}", "customerId": customer, "items": [item] * 3}},
        )
        accepted = body["data"]["createOrder"]
        token, order_id = accepted["consistencyToken"], accepted["orderId"]
    caught_up = "query($id: ID!, $t: String) { order(id: $id, consistencyToken: $t) { id } }"
    await post(client, caught_up, {"id": order_id, "t": token})
    return order_id


async def post(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    return response.json()


async def measure(client: httpx.AsyncClient, query: str, repeats: int) -> tuple[float, float, int]:
    """(median CPU ms, median wall ms, status) of `repeats` requests."""
    cpu, wall, status = [], [], 0
    for _ in range(repeats):
        started_cpu, started = time.process_time(), time.perf_counter()
        response = await client.post("/graphql", json={"query": query})
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    return statistics.median(cpu), statistics.median(wall), status


async def main(orders: int, repeats: int) -> dict[str, dict[str, tuple[float, float]]]:
    """Prints the tables; returns {"refused"|"accepted": {document: (CPU ms, wall ms)}}."""
    found: dict[str, dict[str, tuple[float, float]]] = {"refused": {}, "accepted": {}}
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(Settings(orders_data_dir=Path(data_dir)), embedded=True)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=300) as client,
        ):
            say(f"machine: {machine_description()}")
            say(f"seeding {orders} orders of 3 lines for one customer ...")
            order_id = await seed(client, orders)
            say()
            say("| refused document | CPU ms (median) | status |")
            say("|---|---|---|")
            worst_refused = 0.0
            for name, query in REFUSED.items():
                cpu, wall, status = await measure(client, query, repeats)
                found["refused"][name] = (cpu, wall)
                worst_refused = max(worst_refused, cpu)
                say(f"| {name} | {cpu:.2f} | {status} |")
            say(
                f"worst refused: {worst_refused:.2f} ms CPU (target < {REFUSED_TARGET_MS} ms): "
                f"{verdict(worst_refused < REFUSED_TARGET_MS)}"
            )
            say()
            accepted = {
                "fan-out without aliases, 40 levels": fan_out(40, "projections { name }"),
                "depth 9: orders -> customer -> orders, pages of 100": nested_orders(
                    2, 100
                ).replace("ORDER", order_id),
                "30 aliases x orders(first: 100), lines and customer": wide_orders(30, 100),
            }
            say("| accepted document (worst shapes within the limits) | CPU ms | wall ms |")
            say("|---|---|---|")
            for name, query in accepted.items():
                cpu, wall, status = await measure(client, query, repeats)
                assert status == 200, (name, status)
                found["accepted"][name] = (cpu, wall)
                say(f"| {name} | {cpu:.1f} | {wall:.1f} |")
    return found


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.orders, arguments.repeats))


if __name__ == "__main__":
    cli()
