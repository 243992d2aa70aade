"""What hostile queries cost the server: CPU per request for documents the limits refuse
(target: under 5 ms each) and server time for the worst documents they accept (target:
under 50 ms of CPU each; the largest pages and alias counts the cost limit accepts).

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from graphql import GraphQLSyntaxError, get_introspection_query, parse

from app.server import create_app
from app.settings import Settings
from bench.common import machine_description, say, verdict
from schema.cost import operation_costs
from schema.export import schema
from schema.pagination import MAX_PAGE_SIZE

REFUSED_TARGET_MS = 5.0
ACCEPTED_TARGET_MS = 50.0


def fan_out(levels: int, field: str) -> str:
    fragments = [f"fragment F0 on Query {{ {field} }}"] + [
        f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)
    ]
    return f"query FanOut {{ ...F{levels} }}\n" + "\n".join(fragments)


def cost(query: str) -> int:
    return max(operation_costs(schema._schema, parse(query), {}).values())


def estimated(query: str) -> str:
    """The cost of a document that parses, else "-"."""
    try:
        return str(cost(query))
    except GraphQLSyntaxError:
        return "-"


def largest_accepted(shape: Callable[[int], str], limit: int) -> int:
    """The largest n in 1..100 for which shape(n) costs at most `limit` (costs grow with n)."""
    return max((n for n in range(1, MAX_PAGE_SIZE + 1) if cost(shape(n)) <= limit), default=1)


def worst_accepted(limit: int, order_id: str) -> dict[str, str]:
    """The most expensive shapes within the limits: the largest pages and alias counts whose
    cost is within `limit`."""
    nested = largest_accepted(lambda page: nested_orders(2, page), limit)
    wide_page = largest_accepted(lambda page: wide_orders(30, page), limit)
    aliases = largest_accepted(lambda n: wide_orders(min(n, 30), 100), limit)
    ids_page = largest_accepted(lambda page: ids_pages(30, page), limit)
    return {
        "fan-out without aliases, 40 levels": fan_out(40, "projections { name }"),
        f"depth 9: orders -> customer -> orders, pages of {nested}": nested_orders(
            2, nested
        ).replace("ORDER", order_id),
        f"30 aliases x orders(first: {wide_page}), lines and customer": wide_orders(30, wide_page),
        f"orders(first: 100) x {aliases}, lines and customer": wide_orders(aliases, 100),
        f"30 aliases x orders(first: {ids_page}) {{ id }}": ids_pages(30, ids_page),
        "GraphiQL's introspection query": get_introspection_query(),
    }


def ids_pages(aliases: int, page: int) -> str:
    fields = " ".join(
        f"a{n}: orders(first: {page}) {{ edges {{ node {{ id }} }} }}" for n in range(aliases)
    )
    return "{ " + fields + " }"


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
    "depth 9 through customer -> orders, pages of 100 (over the cost limit)": nested_orders(2, 100),
    "30 aliases x orders(first: 100) (over the cost limit)": wide_orders(30, 100),
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
    answer: dict[str, Any] = response.json()
    return answer


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
        settings = Settings(orders_data_dir=Path(data_dir))
        app = create_app(settings, embedded=True)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=300) as client,
        ):
            say(f"machine: {machine_description()}")
            say(f"seeding {orders} orders of 3 lines for one customer ...")
            order_id = await seed(client, orders)
            say()
            say(f"cost limit (MAX_QUERY_COST): {settings.max_query_cost}")
            say("| refused document | cost | CPU ms (median) | status |")
            say("|---|---|---|---|")
            worst_refused = 0.0
            for name, query in REFUSED.items():
                cpu, wall, status = await measure(client, query, repeats)
                found["refused"][name] = (cpu, wall)
                worst_refused = max(worst_refused, cpu)
                say(f"| {name} | {estimated(query)} | {cpu:.2f} | {status} |")
            say(
                f"worst refused: {worst_refused:.2f} ms CPU (target < {REFUSED_TARGET_MS} ms): "
                f"{verdict(worst_refused < REFUSED_TARGET_MS)}"
            )
            say()
            say("| accepted document (worst shapes within the limits) | cost | CPU ms | wall ms |")
            say("|---|---|---|---|")
            worst_accepted_ms = 0.0
            for name, query in worst_accepted(settings.max_query_cost, order_id).items():
                cpu, wall, status = await measure(client, query, repeats)
                assert status == 200, (name, status)
                found["accepted"][name] = (cpu, wall)
                worst_accepted_ms = max(worst_accepted_ms, cpu)
                say(f"| {name} | {cost(query)} | {cpu:.1f} | {wall:.1f} |")
            say(
                f"worst accepted: {worst_accepted_ms:.1f} ms CPU (target < {ACCEPTED_TARGET_MS} "
                f"ms): {verdict(worst_accepted_ms < ACCEPTED_TARGET_MS)}"
            )
    return found


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.orders, arguments.repeats))


if __name__ == "__main__":
    cli()
