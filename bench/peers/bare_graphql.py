"""Ceilings of the HTTP figures: a bare strawberry + Starlette app, what a user would write
in an afternoon, served like `orders api` (uvicorn, one worker, uvloop, httptools, no access
log), with strawberry's parser and validation caches (as Orders has).

- `order(id)` answers the same selection as the HTTP bench's query from a dict loaded at
  start (`--orders FILE`: the order documents as Orders answered them): no storage at all.
- `addOrderItem` appends one event row and answers `OrderAccepted`, through asyncpg
  (`--store asyncpg --dsn DSN`, one pool) or aiosqlite (`--store aiosqlite --path FILE`, one
  connection, WAL as Orders' SQLite store): no load, no decision, no read model.

    python -m bench.peers.bare_graphql --port 8001 --orders orders.json [--store ...]

Fixed source: a ratio against it moves only with Orders (bench/report.py checks its digest).
"""

from __future__ import annotations

import argparse
import json
from contextlib import asynccontextmanager
from typing import Annotated, Any, Protocol

import aiosqlite
import asyncpg
import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache


@strawberry.type
class Money:
    amount: str
    currency: str


@strawberry.type
class Customer:
    id: strawberry.ID
    name: str
    email: str


@strawberry.type
class Product:
    id: strawberry.ID
    name: str
    stock_available: int


@strawberry.type
class OrderItem:
    product_id: strawberry.ID
    product_name: str
    quantity: int
    unit_price: Money
    line_total: Money
    product: Product | None


@strawberry.type
class Order:
    id: strawberry.ID
    status: str
    version: int
    customer_name: str | None
    customer: Customer | None
    items: list[OrderItem]
    subtotal: Money
    tax: Money
    total: Money


def order_from(document: dict[str, Any]) -> Order:
    def money(value: dict[str, str]) -> Money:
        return Money(**value)

    def customer(value: dict[str, str] | None) -> Customer | None:
        return Customer(id=value["id"], name=value["name"], email=value["email"]) if value else None

    return Order(
        id=document["id"],
        status=document["status"],
        version=document["version"],
        customer_name=document["customerName"],
        customer=customer(document["customer"]),
        items=[
            OrderItem(
                product_id=item["productId"],
                product_name=item["productName"],
                quantity=item["quantity"],
                unit_price=money(item["unitPrice"]),
                line_total=money(item["lineTotal"]),
                product=Product(
                    id=item["product"]["id"],
                    name=item["product"]["name"],
                    stock_available=item["product"]["stockAvailable"],
                )
                if item["product"]
                else None,
            )
            for item in document["items"]
        ],
        subtotal=money(document["subtotal"]),
        tax=money(document["tax"]),
        total=money(document["total"]),
    )


class EventRows(Protocol):
    async def append(self, stream_id: str, data: str) -> int: ...


class PostgresRows:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def append(self, stream_id: str, data: str) -> int:
        return await self.pool.fetchval(
            "INSERT INTO bare_events (stream_id, type, data) VALUES ($1, 'OrderItemAdded', $2)"
            " RETURNING position",
            stream_id,
            data,
        )


class SqliteRows:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection

    async def append(self, stream_id: str, data: str) -> int:
        cursor = await self.connection.execute(
            "INSERT INTO bare_events (stream_id, type, data) VALUES (?, 'OrderItemAdded', ?)",
            (stream_id, data),
        )
        await self.connection.commit()
        return cursor.lastrowid or 0


ORDERS: dict[str, Order] = {}
STORE: list[EventRows] = []


@strawberry.input
class AddOrderItemInput:
    order_id: strawberry.ID
    product_id: strawberry.ID
    quantity: int


@strawberry.type
class OrderAccepted:
    order_id: strawberry.ID
    version: int
    consistency_token: str


@strawberry.type
class UserError:
    code: str
    message: str


AddOrderItemResult = Annotated[OrderAccepted | UserError, strawberry.union("AddOrderItemResult")]


@strawberry.type
class Query:
    @strawberry.field
    def order(self, id: strawberry.ID) -> Order | None:
        return ORDERS.get(id)


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def add_order_item(self, input: AddOrderItemInput) -> AddOrderItemResult:
        if input.quantity < 1:
            return UserError(code="VALIDATION", message="quantity must be positive")
        data = json.dumps({"productId": input.product_id, "quantity": input.quantity})
        position = await STORE[0].append(f"Order-{input.order_id}", data)
        return OrderAccepted(
            order_id=input.order_id, version=position, consistency_token=str(position)
        )


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[ParserCache(maxsize=1000), ValidationCache(maxsize=1000)],
)

TABLE = (
    "CREATE TABLE IF NOT EXISTS bare_events (position {key}, stream_id text NOT NULL,"
    " type text NOT NULL, data {json} NOT NULL)"
)


def app(args: argparse.Namespace) -> Starlette:
    @asynccontextmanager
    async def lifespan(_: Starlette):
        if args.store == "asyncpg":
            pool = await asyncpg.create_pool(args.dsn, min_size=2, max_size=10)
            await pool.execute(
                TABLE.format(key="bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY", json="jsonb")
            )
            STORE.append(PostgresRows(pool))
            yield
            await pool.close()
        elif args.store == "aiosqlite":
            connection = await aiosqlite.connect(args.path)
            await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute(TABLE.format(key="INTEGER PRIMARY KEY", json="text"))
            STORE.append(SqliteRows(connection))
            yield
            await connection.close()
        else:
            yield

    return Starlette(routes=[Route("/graphql", GraphQL(schema))], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--orders", help="JSON list of order documents to answer from")
    parser.add_argument("--store", choices=["none", "asyncpg", "aiosqlite"], default="none")
    parser.add_argument("--dsn")
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.orders:
        with open(args.orders) as file:
            ORDERS.update({d["id"]: order_from(d) for d in json.load(file)})
    uvicorn.run(
        app(args),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        workers=1,
        access_log=False,
        server_header=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
