"""Saga dead letters on real PostgreSQL with the real orchestrator: a compensation the
payment provider refuses parks the saga's trigger while other sagas finish; `deadLetters`
over GraphQL lists it with a projection's letter in one list and one cursor, in log order;
`retryDeadLetter` after the cause is fixed finishes that saga. A saga letter never makes a
consistency-token read stale (only the projections' letters do)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from app.bootstrap import command_bus, follower_parts
from app.wiring import saga_reactions, simulated_gateways
from log_follower.consumer import PerKeyConsumer
from log_follower.follower import Follower
from sagas.gateways.port import GatewayOutcome, PaymentGateway
from sagas.gateways.simulated import (
    PaymentRules,
    ShippingRules,
    SimulatedPayments,
)
from sagas.orchestrator import FULFILLMENT
from tests.integration.graphql_stack import ApiStack, api_stack
from tests.subscriber_loop import eventually, subscriber_running
from write_model.domain.money import Money

pytestmark = [pytest.mark.postgres, pytest.mark.mongo]

SETUP = """
mutation($customer: ID!, $product: ID!) {
  registerCustomer(input: {customerId: $customer, name: "Ada", email: "ada@example.com"}) {
    __typename
  }
  addProduct(input: {productId: $product, name: "Pen", price: "2.00", initialStock: 10}) {
    __typename
  }
}"""
ORDER = """
mutation($order: ID!, $customer: ID!, $product: ID!, $country: String!) {
  createOrder(input: {orderId: $order, customerId: $customer,
                      items: [{productId: $product, quantity: 2}],
                      shippingAddress: {line1: "1 Main St", city: "Springfield",
                                        postalCode: "12345", country: $country}}) {
    __typename
  }
  submitOrder(input: {orderId: $order}) { ... on OrderAccepted { consistencyToken } }
}"""
DEAD_LETTERS = """
query($first: Int, $after: String) {
  deadLetters(first: $first, after: $after) {
    id subscriber eventId streamId position error attempts failedAt cursor
  }
}"""
RETRY = """
mutation($id: ID!) {
  retryDeadLetter(id: $id) { __typename ... on DeadLetterRetried { id } }
}"""
READ_ORDER = """
query($id: ID!, $token: String) {
  order(id: $id, consistencyToken: $token) { status fulfillment { state reason } }
}"""


@dataclass
class RefusingRefunds:
    """The payment provider, refusing every refund while `refusing` (a provider that
    will not undo a charge: a person has to look at it)."""

    inner: PaymentGateway
    refusing: bool = True

    async def charge(self, key: str, customer_id: str, amount: Money) -> GatewayOutcome:
        return await self.inner.charge(key, customer_id, amount)

    async def refund(self, key: str, charge_key: str) -> GatewayOutcome:
        if self.refusing:
            return GatewayOutcome.refused("refunds are switched off at the provider")
        return await self.inner.refund(key, charge_key)


def saga_dependencies_on(stack: ApiStack, payments: RefusingRefunds) -> Follower:
    """The saga process's loop on the stack's PostgreSQL, on these payments, trying a
    failing saga twice and looking at retry requests often."""
    backend = stack.runtime.backend
    gateways = simulated_gateways(
        backend.ledger, payments=payments, shipping_rules=ShippingRules(frozenset({"AQ"}))
    )
    [orchestrator] = saga_reactions(
        "orchestration",
        backend.events,
        backend.registry,
        command_bus(stack.settings, backend),
        gateways,
    )
    parts = follower_parts(stack.settings, backend)
    settings = replace(
        parts.settings,
        poll_seconds=0.05,
        max_attempts=2,
        backoff_seconds=0.01,
        maintenance_seconds=0.05,
    )
    return Follower(PerKeyConsumer(orchestrator), replace(parts, settings=settings))


async def saga_ended(stack: ApiStack, order_id: str) -> str | None:
    events = await stack.runtime.backend.events.read_stream(FULFILLMENT.stream_id(order_id))
    last = events[-1].type if events else None
    return last if last in ("FulfillmentCompleted", "FulfillmentFailed") else None


async def test_a_refused_refund_is_a_saga_dead_letter_listed_with_the_projections_and_retried(
    unique: str,
) -> None:
    customer, product = f"c-{unique}", f"p-{unique}"
    stuck, fine = f"o-stuck-{unique}", f"o-fine-{unique}"
    async with api_stack(consistency_wait_seconds=5.0) as stack:
        await stack.gql(SETUP, {"customer": customer, "product": product})
        payments = RefusingRefunds(SimulatedPayments(stack.runtime.backend.ledger, PaymentRules()))
        async with subscriber_running(saga_dependencies_on(stack, payments)):
            await stack.ghost_order_item(f"o-ghost-{unique}")
            # No shipping to AQ: the payment is to be refunded, and the provider refuses.
            submitted = await stack.gql(
                ORDER, {"order": stuck, "customer": customer, "product": product, "country": "AQ"}
            )
            await stack.gql(
                ORDER, {"order": fine, "customer": customer, "product": product, "country": "US"}
            )
            assert await eventually(lambda: saga_ended(stack, fine)) == "FulfillmentCompleted"

            async def two_letters() -> list[dict[str, Any]] | None:
                letters = (await stack.gql(DEAD_LETTERS, {"first": 10}))["deadLetters"]
                return letters if len(letters) == 2 else None

            letters = await eventually(two_letters)
            projection, saga = letters  # the ghost item was appended first
            assert projection["subscriber"] == "orders"
            assert projection["streamId"] == f"Order-o-ghost-{unique}"
            assert saga["subscriber"] == "saga:fulfillment"
            assert saga["streamId"] == f"Order-{stuck}"
            assert "CompensationRefused" in saga["error"]
            assert "refunds are switched off at the provider" in saga["error"]
            assert saga["attempts"] == 2
            assert int(projection["position"]) < int(saga["position"])
            # One cursor over both lists: a page of one, then the next after its cursor.
            [first] = (await stack.gql(DEAD_LETTERS, {"first": 1}))["deadLetters"]
            after = {"first": 1, "after": first["cursor"]}
            [second] = (await stack.gql(DEAD_LETTERS, after))["deadLetters"]
            assert [first["id"], second["id"]] == [projection["id"], saga["id"]]
            by_id = {"first": 5, "after": projection["id"]}
            assert (await stack.gql(DEAD_LETTERS, by_id))["deadLetters"] == [saga]
            # The saga's letter does not hold the order's read back (the projections applied
            # the submit): only a projection's letter makes a read stale.
            token = submitted["submitOrder"]["consistencyToken"]
            read = await stack.gql(READ_ORDER, {"id": stuck, "token": token})
            assert read["order"]["status"] == "SUBMITTED"

            payments.refusing = False  # the provider takes refunds again
            retried = (await stack.gql(RETRY, {"id": saga["id"]}))["retryDeadLetter"]
            assert retried == {"__typename": "DeadLetterRetried", "id": saga["id"]}
            assert await eventually(lambda: saga_ended(stack, stuck)) == "FulfillmentFailed"

            async def only_the_projection_letter() -> bool:
                left = (await stack.gql(DEAD_LETTERS, {"first": 10}))["deadLetters"]
                return [d["id"] for d in left] == [projection["id"]]

            await eventually(only_the_projection_letter)
        await stack.caught_up()
        order = (await stack.gql(READ_ORDER, {"id": stuck, "token": None}))["order"]
    assert order == {
        "status": "REJECTED",
        "fulfillment": {"state": "FAILED", "reason": "no shipping to AQ"},
    }
