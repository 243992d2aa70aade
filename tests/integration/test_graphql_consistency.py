"""Read-your-writes: a query given a mutation's consistencyToken waits until the projector
has applied that write (bounded by a setting); the payloads' object fields do it alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.integration.graphql_stack import ApiStack, api_stack, running_app

pytestmark = [pytest.mark.postgres, pytest.mark.mongo]

SETUP = """
mutation {
  registerCustomer(input: {customerId: "ada", name: "Ada", email: "ada@example.com"}) {
    ... on CustomerAccepted { consistencyToken customer { name version } }
  }
  addProduct(input: {productId: "pen", name: "Pen", price: "1.25", initialStock: 10}) {
    ... on ProductAccepted { consistencyToken product { name version } }
  }
}"""
ADD_ITEM = """
mutation($order: ID!) {
  addOrderItem(input: {orderId: $order, productId: "pen", quantity: 1}) {
    ... on OrderAccepted { version consistencyToken }
  }
}"""
READ = """
query($id: ID!, $token: String) {
  order(id: $id, consistencyToken: $token) { version items { quantity } }
}"""


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[ApiStack]:
    async with api_stack(consistency_wait_seconds=5.0) as built:
        data = await built.gql(SETUP)
        assert data["registerCustomer"]["customer"] == {"name": "Ada", "version": 1}
        assert data["addProduct"]["product"] == {"name": "Pen", "version": 1}
        yield built


async def test_the_payload_object_reflects_the_write(stack: ApiStack) -> None:
    created = await stack.gql(
        """mutation {
          createOrder(input: {orderId: "o-payload", customerId: "ada",
                              items: [{productId: "pen", quantity: 2}]}) {
            ... on OrderAccepted { version order { id version customerName
                                                   items { quantity productName } } }
          }
        }"""
    )
    accepted = created["createOrder"]
    assert accepted["order"] == {
        "id": "o-payload",
        "version": accepted["version"],
        "customerName": "Ada",
        "items": [{"quantity": 2, "productName": "Pen"}],
    }
    # Two writes to one order in one request: each payload shows its own version.
    both = await stack.gql(
        """mutation {
          first: addOrderItem(input: {orderId: "o-payload", productId: "pen", quantity: 1}) {
            ... on OrderAccepted { order { version } } }
          second: addOrderItem(input: {orderId: "o-payload", productId: "pen", quantity: 1}) {
            ... on OrderAccepted { order { version } } }
        }"""
    )
    assert both["first"]["order"]["version"] == 3
    assert both["second"]["order"]["version"] == 4


async def test_a_query_with_the_token_waits_for_the_projector(stack: ApiStack) -> None:
    await stack.gql(
        'mutation { createOrder(input: {orderId: "o-wait", customerId: "ada"}) { __typename } }'
    )
    await stack.caught_up()
    await stack.projector.stop()
    try:
        written = (await stack.gql(ADD_ITEM, {"order": "o-wait"}))["addOrderItem"]
        assert written["version"] == 2
        without = await stack.gql(READ, {"id": "o-wait", "token": None})
        assert without["order"]["version"] == 1  # the projector has not seen the write

        reading = asyncio.create_task(
            stack.gql(READ, {"id": "o-wait", "token": written["consistencyToken"]})
        )
        await asyncio.sleep(0.3)
        assert not reading.done()  # waiting for the projector
    finally:
        stack.projector.start()
    read = await asyncio.wait_for(reading, 10)
    assert read["order"] == {"version": 2, "items": [{"quantity": 1}]}


async def test_the_wait_is_bounded_and_says_so(stack: ApiStack) -> None:
    await stack.gql(
        'mutation { createOrder(input: {orderId: "o-late", customerId: "ada"}) { __typename } }'
    )
    await stack.caught_up()
    impatient = stack.settings.model_copy(update={"consistency_wait_seconds": 0.2})
    await stack.projector.stop()
    try:
        async with running_app(impatient) as (_, client):
            written = await client.post(
                "/graphql", json={"query": ADD_ITEM, "variables": {"order": "o-late"}}
            )
            token = written.json()["data"]["addOrderItem"]["consistencyToken"]
            response = await client.post(
                "/graphql", json={"query": READ, "variables": {"id": "o-late", "token": token}}
            )
            body = response.json()
            assert body["data"] == {"order": None}
            (error,) = body["errors"]
            assert error["extensions"]["code"] == "CONSISTENCY_TIMEOUT"
            assert "did not catch up with this write within 0.2 s" in error["message"]

            accepted = await client.post(
                "/graphql",
                json={
                    "query": 'mutation { addOrderItem(input: {orderId: "o-late", '
                    'productId: "pen", quantity: 1}) { ... on OrderAccepted '
                    "{ version order { version } } } }"
                },
            )
            payload = accepted.json()
            # The write itself succeeded; only its read-your-writes field reports the wait.
            assert payload["data"]["addOrderItem"] == {"version": 3, "order": None}
            assert payload["errors"][0]["path"] == ["addOrderItem", "order"]
    finally:
        stack.projector.start()


async def test_a_malformed_token_is_a_clear_error(stack: ApiStack) -> None:
    response = await stack.post(READ, {"id": "o-wait", "token": "not-a-token"})
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "'not-a-token' is not a consistency token" in error["message"]


async def test_customer_and_product_queries_take_tokens_too(stack: ApiStack) -> None:
    renamed = await stack.gql(
        'mutation { renameCustomer(input: {customerId: "ada", name: "Ada Lovelace"}) '
        "{ ... on CustomerAccepted { consistencyToken } } }"
    )
    token = renamed["renameCustomer"]["consistencyToken"]
    customer = await stack.gql(
        'query($t: String) { customer(id: "ada", consistencyToken: $t) { name version } }',
        {"t": token},
    )
    assert customer["customer"] == {"name": "Ada Lovelace", "version": 2}

    restocked = await stack.gql(
        'mutation { restockProduct(input: {productId: "pen", quantity: 5}) '
        "{ ... on ProductAccepted { consistencyToken } } }"
    )
    product = await stack.gql(
        'query($t: String) { product(id: "pen", consistencyToken: $t) { stockOnHand } }',
        {"t": restocked["restockProduct"]["consistencyToken"]},
    )
    assert product["product"] == {"stockOnHand": 15}


async def test_a_token_past_a_parked_event_of_the_stream_is_a_stale_read_error(
    stack: ApiStack,
) -> None:
    token = (await stack.ghost_order_item("o-ghost")).consistency_token
    response = await stack.post(READ, {"id": "o-ghost", "token": token})

    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "STALE_READ_MODEL"
    letters = (await stack.gql("{ deadLetters { id streamId } }"))["deadLetters"]
    [letter] = [d for d in letters if d["streamId"] == "Order-o-ghost"]
    assert letter["id"] in error["message"]
    # Other streams are not held back by it.
    other = await stack.gql(ADD_ITEM, {"order": "o-wait"})
    read = await stack.gql(
        READ, {"id": "o-wait", "token": other["addOrderItem"]["consistencyToken"]}
    )
    assert read["order"]["version"] == other["addOrderItem"]["version"]
