"""The e2e tests' GraphQL client: the real `gql` client over aiohttp, as a frontend uses it.

The client is built with the public contract (`schema/contract.graphql`) as its schema, so
every document a test sends is first validated against the contract itself: a test cannot
lean on a field the contract does not have.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "schema" / "contract.graphql"
REQUEST_TIMEOUT_SECONDS = 30


def contract_sdl() -> str:
    return CONTRACT.read_text()


# ------------------------------------------------------------ mutation documents

USER_ERROR_FIELDS = """
    ... on UserError { code message }
    ... on ValidationError { field }
    ... on NotFoundError { id }
    ... on ConcurrencyError { expectedVersion actualVersion }
"""

ACCEPTED_FIELDS = {
    "OrderResult": "... on OrderAccepted { orderId version consistencyToken }",
    "CustomerResult": "... on CustomerAccepted { customerId version consistencyToken }",
    "ProductResult": "... on ProductAccepted { productId version consistencyToken }",
}

# mutation field -> (input type, result union)
MUTATIONS = {
    "registerCustomer": ("RegisterCustomerInput", "CustomerResult"),
    "renameCustomer": ("RenameCustomerInput", "CustomerResult"),
    "addProduct": ("AddProductInput", "ProductResult"),
    "changeProductPrice": ("ChangeProductPriceInput", "ProductResult"),
    "restockProduct": ("RestockProductInput", "ProductResult"),
    "createOrder": ("CreateOrderInput", "OrderResult"),
    "addOrderItem": ("AddOrderItemInput", "OrderResult"),
    "removeOrderItem": ("RemoveOrderItemInput", "OrderResult"),
    "setShippingAddress": ("SetShippingAddressInput", "OrderResult"),
    "submitOrder": ("SubmitOrderInput", "OrderResult"),
    "cancelOrder": ("CancelOrderInput", "OrderResult"),
}


def mutation_document(name: str, extra: str = "") -> str:
    """`mutation($input: XInput!) { result: name(input: $input) { ...every member } }`;
    `extra` adds fields to the success member (e.g. `order { version }`)."""
    input_type, union = MUTATIONS[name]
    accepted = ACCEPTED_FIELDS[union]
    if extra:
        accepted = accepted[: accepted.rindex("}")] + f" {extra} }}"
    return (
        f"mutation {name[0].upper()}{name[1:]}($input: {input_type}!) {{\n"
        f"  result: {name}(input: $input) {{\n    __typename\n    {accepted}\n"
        f"    {USER_ERROR_FIELDS}\n  }}\n}}"
    )


class NotAccepted(AssertionError):
    pass


def accepted(payload: dict[str, Any], typename: str | None = None) -> dict[str, Any]:
    """The payload, asserting it is the success member (`...Accepted`)."""
    found = payload.get("__typename", "")
    if not found.endswith("Accepted") or (typename is not None and found != typename):
        raise NotAccepted(f"expected {typename or 'an ...Accepted payload'}, got {payload}")
    return payload


# --------------------------------------------------------------------- client


class Api:
    """A connected gql session plus a raw httpx client for protocol-level checks."""

    def __init__(self, session: Any, http: httpx.AsyncClient, url: str) -> None:
        self.session = session
        self.http = http
        self.url = url

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, token: str | None = None) -> AsyncIterator[Api]:
        """`token`: sent as `Authorization: Bearer <token>` with every request."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        transport = AIOHTTPTransport(url=url, timeout=REQUEST_TIMEOUT_SECONDS, headers=headers)
        client = Client(
            transport=transport,
            schema=contract_sdl(),
            execute_timeout=REQUEST_TIMEOUT_SECONDS,
        )
        http_client = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS, headers=headers)
        async with client as session, http_client as http:
            yield cls(session, http, url)

    async def execute(
        self,
        document: str,
        variables: dict[str, Any] | None = None,
        *,
        correlation_id: str | None = None,
    ) -> dict[str, Any]:
        """The `data` of a successful response; a GraphQL error raises TransportQueryError."""
        request = GraphQLRequest(_parsed(document), variable_values=variables)
        extra = {"headers": {"X-Correlation-ID": correlation_id}} if correlation_id else None
        return await self.session.execute(request, extra_args=extra)

    async def mutate(
        self,
        name: str,
        input: dict[str, Any],
        *,
        correlation_id: str | None = None,
        extra: str = "",
    ) -> dict[str, Any]:
        """The mutation's result payload (whichever union member it is)."""
        data = await self.execute(
            mutation_document(name, extra), {"input": input}, correlation_id=correlation_id
        )
        return data["result"]

    async def post(self, body: Any, **kwargs: Any) -> httpx.Response:
        """A raw POST to /graphql (JSON body), for protocol-level checks."""
        return await self.http.post(self.url, json=body, **kwargs)


@functools.lru_cache(maxsize=512)
def _parsed(document: str) -> GraphQLRequest:
    from gql import gql

    return gql(document)


# ------------------------------------------------------------------ fixtures

ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"}


async def register_customer(api: Api, uid: str, name: str | None = None) -> dict[str, Any]:
    return accepted(
        await api.mutate(
            "registerCustomer",
            {
                "customerId": f"c-{uid}",
                "name": name or f"Customer {uid}",
                "email": f"{uid}@example.com",
            },
        ),
        "CustomerAccepted",
    )


async def add_product(
    api: Api, sku: str, name: str, price: str, stock: int = 100
) -> dict[str, Any]:
    return accepted(
        await api.mutate(
            "addProduct",
            {"productId": sku, "name": name, "price": price, "initialStock": stock},
        ),
        "ProductAccepted",
    )


async def create_order(api: Api, order_id: str, customer_id: str, **fields: Any) -> dict:
    return accepted(
        await api.mutate("createOrder", {"orderId": order_id, "customerId": customer_id, **fields}),
        "OrderAccepted",
    )


async def add_item(api: Api, order_id: str, sku: str, quantity: int, **fields: Any) -> dict:
    return accepted(
        await api.mutate(
            "addOrderItem",
            {"orderId": order_id, "productId": sku, "quantity": quantity, **fields},
        ),
        "OrderAccepted",
    )


ORDER_FIELDS = """
    id customerId customerName status version createdAt updatedAt
    customer { id name }
    items {
      productId productName quantity
      unitPrice { amount currency }
      lineTotal { amount currency }
      product { id name stockAvailable }
    }
    subtotal { amount currency }
    tax { amount currency }
    total { amount currency }
    shippingAddress { line1 city postalCode country }
    fulfillment { state steps { name status } reason }
"""

ORDER_QUERY = f"""
query Order($id: ID!, $token: String) {{
  order(id: $id, consistencyToken: $token) {{ {ORDER_FIELDS} }}
}}
"""


async def read_order(api: Api, order_id: str, token: str | None = None) -> dict[str, Any] | None:
    data = await api.execute(ORDER_QUERY, {"id": order_id, "token": token})
    return data["order"]


# Not in the contract (schema/contract.graphql), so posted as it is, not through the
# contract-validating client.
PROCESSES = """
query { processes { name kind leading leaderSince position headPosition lag
  oldestUnhandledSeconds parkedLetters lastHeartbeat state } }
"""


async def processes(http: httpx.AsyncClient, base: str) -> dict[str, dict]:
    """The staff query `processes` (every follower of the log), by follower name."""
    answer = await http.post(f"{base}/graphql", json={"query": PROCESSES})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    return {process["name"]: process for process in body["data"]["processes"]}
