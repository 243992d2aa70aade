"""Peer: the write model's 5-command order workload on the `eventsourcing` library (the
version pinned in pyproject.toml's `bench` extra), on its PostgreSQL persistence.

The same work per command as Orders' command bus: load the aggregate, decide, append its
new event with optimistic concurrency; creating an order also loads its customer, adding an
item loads the product for its catalog price, submitting needs items and an address. Each
client is a thread (the library is synchronous); prints one JSON line:

    python -m bench.peers.eventsourcing_orders DSN --clients 8 --seconds 6

Fixed source: a ratio against it moves only with Orders (bench/report.py checks its digest).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"}


class Customer(Aggregate):
    @event("Registered")
    def __init__(self, name: str, email: str) -> None:
        self.name = name
        self.email = email


class Product(Aggregate):
    @event("Added")
    def __init__(self, name: str, price: str, stock: int) -> None:
        self.name = name
        self.price = price
        self.stock = stock


class Order(Aggregate):
    @event("Created")
    def __init__(self, customer_id: str, address: dict) -> None:
        self.customer_id = customer_id
        self.address = address
        self.items: list[dict] = []
        self.status = "DRAFT"

    def add_item(self, product_id: str, quantity: int, unit_price: str) -> None:
        if self.status != "DRAFT":
            raise ValueError("only a draft order takes items")
        if quantity < 1:
            raise ValueError("quantity must be positive")
        self._item_added(product_id, quantity, unit_price)

    @event("ItemAdded")
    def _item_added(self, product_id: str, quantity: int, unit_price: str) -> None:
        self.items.append({"productId": product_id, "quantity": quantity, "price": unit_price})

    def submit(self) -> None:
        if self.status != "DRAFT" or not self.items or not self.address:
            raise ValueError("an order needs items and an address to be submitted")
        self._submitted()

    @event("Submitted")
    def _submitted(self) -> None:
        self.status = "SUBMITTED"


class Orders(Application):
    def register_customer(self, name: str, email: str) -> UUID:
        customer = Customer(name, email)
        self.save(customer)
        return customer.id

    def add_product(self, name: str, price: str, stock: int) -> UUID:
        product = Product(name, price, stock)
        self.save(product)
        return product.id

    def create_order(self, customer_id: UUID) -> UUID:
        customer: Customer = self.repository.get(customer_id)
        order = Order(str(customer.id), ADDRESS)
        self.save(order)
        return order.id

    def add_item(self, order_id: UUID, product_id: UUID, quantity: int) -> None:
        product: Product = self.repository.get(product_id)
        order: Order = self.repository.get(order_id)
        order.add_item(str(product.id), quantity, product.price)
        self.save(order)

    def submit(self, order_id: UUID) -> None:
        order: Order = self.repository.get(order_id)
        order.submit()
        self.save(order)


def application(dsn: str, clients: int) -> Orders:
    url = urlsplit(dsn)
    return Orders(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/"),
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": url.username or "postgres",
            "POSTGRES_PASSWORD": url.password or "",
            "POSTGRES_POOL_SIZE": str(clients),
            "POSTGRES_MAX_OVERFLOW": "0",
            "CREATE_TABLE": "y",
        }
    )


def run(dsn: str, clients: int, seconds: float) -> dict:
    app = application(dsn, clients)
    customer = app.register_customer("Bench", "bench@example.com")
    products = [app.add_product(f"Product {n}", "9.99", 1_000_000) for n in range(3)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    def client(mine: list[float]) -> None:
        def timed(command, *args) -> None:
            started = time.perf_counter()
            command(*args)
            mine.append(time.perf_counter() - started)

        while time.perf_counter() < deadline:
            started = time.perf_counter()
            order = app.create_order(customer)
            mine.append(time.perf_counter() - started)
            for product in products:
                timed(app.add_item, order, product, 1)
            timed(app.submit, order)

    threads = [threading.Thread(target=client, args=(mine,)) for mine in latencies]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    app.close()
    every = [latency for mine in latencies for latency in mine]
    quantiles = statistics.quantiles(every, n=100)
    return {
        "commands": len(every),
        "seconds": elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dsn")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    print(json.dumps(run(args.dsn, args.clients, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
