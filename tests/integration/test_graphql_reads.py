"""Queries over HTTP against the real stores: DataLoader batching (counted Mongo round
trips), connections and cursors, the event-store reads (history, orderAt), projection
status and dead letters."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from log_follower.dead_letters.port import DeadLetter, LetterOwner
from tests.integration.graphql_stack import ApiStack, api_stack
from write_model.envelope import LogPosition

pytestmark = [pytest.mark.postgres, pytest.mark.mongo]

CUSTOMERS = 5
PRODUCTS = 7
ORDERS = 50

REGISTER = """
mutation($id: ID!, $name: String!, $email: String!) {
  registerCustomer(input: {customerId: $id, name: $name, email: $email}) {
    __typename ... on CustomerAccepted { consistencyToken }
  }
}"""
ADD_PRODUCT = """
mutation($id: ID!, $name: String!, $price: Decimal!) {
  addProduct(input: {productId: $id, name: $name, price: $price, initialStock: 100}) {
    __typename
  }
}"""
CREATE_ORDER = """
mutation($input: CreateOrderInput!) {
  createOrder(input: $input) {
    __typename ... on OrderAccepted { orderId version consistencyToken }
  }
}"""
ORDER_LIST = """
query($first: Int) {
  orders(first: $first) {
    edges { node { id customer { name } items { product { name } } } }
  }
}"""


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[ApiStack]:
    # A long version cache: the counted queries must not include its refresh. No read cache:
    # these count the loaders' batches, which it would answer from memory when repeated
    # (tests/integration/test_read_cache.py counts what it saves).
    async with api_stack(read_model_version_ttl_seconds=60, read_cache_documents=0) as built:
        await seed(built)
        await built.caught_up()
        yield built


async def seed(stack: ApiStack) -> None:
    for c in range(CUSTOMERS):
        data = await stack.gql(
            REGISTER, {"id": f"c{c}", "name": f"Customer {c}", "email": f"c{c}@example.com"}
        )
        assert data["registerCustomer"]["__typename"] == "CustomerAccepted"
    for p in range(PRODUCTS):
        price = str(Decimal("1.10") * (p + 1))
        data = await stack.gql(ADD_PRODUCT, {"id": f"p{p}", "name": f"Product {p}", "price": price})
        assert data["addProduct"]["__typename"] == "ProductAccepted"
    for n in range(ORDERS):
        items = [
            {"productId": f"p{n % PRODUCTS}", "quantity": 1 + n % 3},
            {"productId": f"p{(n + 3) % PRODUCTS}", "quantity": 2},
        ]
        data = await stack.gql(
            CREATE_ORDER,
            {"input": {"orderId": f"o{n:02d}", "customerId": f"c{n % CUSTOMERS}", "items": items}},
        )
        assert data["createOrder"]["__typename"] == "OrderAccepted", data


async def test_a_page_of_orders_with_customers_and_products_costs_constant_round_trips(
    stack: ApiStack,
) -> None:
    await stack.gql(ORDER_LIST, {"first": 5})  # warm the collection version cache
    counted = {}
    for first in (10, 50):
        stack.mongo.reset()
        data = await stack.gql(ORDER_LIST, {"first": first})
        counted[first] = Counter(stack.mongo.seen)
        edges = data["orders"]["edges"]
        assert len(edges) == first
        for edge in edges:
            node = edge["node"]
            assert node["customer"]["name"].startswith("Customer ")
            assert all(item["product"]["name"].startswith("Product ") for item in node["items"])
    expected = Counter(
        {("find", "orders_v1"): 1, ("find", "customers_v1"): 1, ("find", "products_v1"): 1}
    )
    assert counted[10] == counted[50] == expected


async def test_one_order_reads_ahead_only_the_relations_it_selects(stack: ApiStack) -> None:
    plain = 'query { order(id: "o07") { id status items { quantity } } }'
    through_fragments = """
    query { order(id: "o07") { id ...Buyer ... on Order { items { product { name } } } } }
    fragment Buyer on Order { customer { name } }"""
    await stack.gql(plain)  # warm the collection version cache
    reads = {}
    answers = {}
    for name, query in (("plain", plain), ("through fragments", through_fragments)):
        stack.mongo.reset()
        answers[name] = (await stack.gql(query))["order"]
        reads[name] = Counter(stack.mongo.seen)
    # a plain selection reads the order alone
    assert reads["plain"] == Counter({("find", "orders_v1"): 1})
    assert answers["plain"]["items"] == [{"quantity": 1 + 7 % 3}, {"quantity": 2}]
    # relations selected through fragments are read in one batch each, and answered
    assert reads["through fragments"] == Counter(
        {("find", "orders_v1"): 1, ("find", "customers_v1"): 1, ("find", "products_v1"): 1}
    )
    assert answers["through fragments"]["customer"] == {"name": f"Customer {7 % CUSTOMERS}"}
    assert answers["through fragments"]["items"] == [
        {"product": {"name": f"Product {7 % PRODUCTS}"}},
        {"product": {"name": f"Product {(7 + 3) % PRODUCTS}"}},
    ]


async def test_order_pages_follow_each_other_and_stay_stable_under_inserts(
    stack: ApiStack,
) -> None:
    query = """
    query($after: String) {
      orders(first: 20, after: $after, sort: CREATED_AT_ASC) {
        totalCount
        edges { cursor node { id } }
        pageInfo { hasNextPage endCursor }
      }
    }"""
    first = (await stack.gql(query, {"after": None}))["orders"]
    assert first["totalCount"] >= ORDERS
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["endCursor"] == first["edges"][-1]["cursor"]
    seen = [edge["node"]["id"] for edge in first["edges"]]

    # Orders created after the first page was read do not shift the pages that follow.
    for n in range(3):
        await stack.gql(
            CREATE_ORDER,
            {"input": {"orderId": f"late{n}", "customerId": "c0", "items": []}},
        )
    after = first["pageInfo"]["endCursor"]
    while after is not None:
        page = (await stack.gql(query, {"after": after}))["orders"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
    seeded = [f"o{n:02d}" for n in range(ORDERS)]
    assert seen[:ORDERS] == seeded
    assert len(seen) == len(set(seen))


async def test_sorts_filters_and_totals(stack: ApiStack) -> None:
    query = """
    query($filter: OrderFilter, $sort: OrderSort) {
      orders(filter: $filter, sort: $sort, first: 100) {
        totalCount edges { node { id customerId status total { amount currency } } }
      }
    }"""
    by_total = (await stack.gql(query, {"sort": "TOTAL_DESC"}))["orders"]["edges"]
    totals = [Decimal(e["node"]["total"]["amount"]) for e in by_total]
    assert totals == sorted(totals, reverse=True)

    mine = (await stack.gql(query, {"filter": {"customerId": "c1"}}))["orders"]
    assert mine["totalCount"] == len(mine["edges"]) == ORDERS // CUSTOMERS
    assert {e["node"]["customerId"] for e in mine["edges"]} == {"c1"}

    drafts = await stack.gql(query, {"filter": {"status": "DRAFT", "customerId": "c2"}})
    assert {e["node"]["status"] for e in drafts["orders"]["edges"]} == {"DRAFT"}

    confirmed = (await stack.gql(query, {"filter": {"status": "CONFIRMED"}}))["orders"]
    assert confirmed == {"totalCount": 0, "edges": []}


async def test_a_cursor_of_another_sort_order_is_refused(stack: ApiStack) -> None:
    page = await stack.gql("{ orders(first: 1, sort: TOTAL_DESC) { pageInfo { endCursor } } }")
    cursor = page["orders"]["pageInfo"]["endCursor"]
    response = await stack.post(
        "query($c: String) { orders(after: $c) { totalCount } }", {"c": cursor}
    )
    error = response.json()["errors"][0]
    assert "belongs to another list or sort order" in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"

    response = await stack.post("{ orders(first: 101) { totalCount } }")
    assert "`first` must be between 0 and 100, got 101" in response.text


async def test_customers_and_products_connections(stack: ApiStack) -> None:
    data = await stack.gql(
        """{
          customers(first: 2) {
            totalCount
            edges { node { id name email orderCount lifetimeValue { amount currency }
                           orders(first: 3) { totalCount edges { node { customerId } } } } }
            pageInfo { hasNextPage endCursor }
          }
          products(first: 100) {
            totalCount
            edges { node { id name price { amount currency } stockOnHand stockReserved
                           stockAvailable version } }
          }
        }"""
    )
    customers = data["customers"]
    assert customers["totalCount"] == CUSTOMERS
    assert len(customers["edges"]) == 2 and customers["pageInfo"]["hasNextPage"]
    newest = customers["edges"][0]["node"]
    assert newest["id"] == f"c{CUSTOMERS - 1}"  # newest first
    assert newest["lifetimeValue"] == {"amount": "0.00", "currency": "USD"}
    assert newest["orders"]["totalCount"] == newest["orderCount"] == ORDERS // CUSTOMERS
    assert {e["node"]["customerId"] for e in newest["orders"]["edges"]} == {newest["id"]}

    products = data["products"]
    assert products["totalCount"] == PRODUCTS
    assert [e["node"]["id"] for e in products["edges"]] == [f"p{p}" for p in range(PRODUCTS)]
    assert products["edges"][2]["node"]["price"] == {"amount": "3.30", "currency": "USD"}
    assert products["edges"][0]["node"]["stockAvailable"] == 100


async def test_order_history_and_order_at_read_the_event_store(stack: ApiStack) -> None:
    created = await stack.gql(
        CREATE_ORDER,
        {
            "input": {
                "orderId": "timeline",
                "customerId": "c3",
                "items": [{"productId": "p1", "quantity": 1}],
            }
        },
    )
    assert created["createOrder"]["version"] == 2
    added = await stack.gql(
        """mutation { addOrderItem(input: {orderId: "timeline", productId: "p2", quantity: 4}) {
             ... on OrderAccepted { version order { version total { amount } } } } }"""
    )
    assert added["addOrderItem"]["version"] == 3
    current_total = added["addOrderItem"]["order"]["total"]["amount"]

    history = (
        await stack.gql(
            """{ orderHistory(id: "timeline") { eventId streamId type version position
                 occurredAt data correlationId causationId userId schemaVersion } }"""
        )
    )["orderHistory"]
    assert [e["type"] for e in history] == ["OrderCreated", "OrderItemAdded", "OrderItemAdded"]
    assert [e["version"] for e in history] == [1, 2, 3]
    assert all(e["streamId"] == "Order-timeline" for e in history)
    # camelCase payloads: OrderCreated at v2, OrderItemAdded at v3 (v2 made its price Money)
    assert [e["schemaVersion"] for e in history] == [2, 3, 3]
    assert int(history[0]["position"]) < int(history[2]["position"])
    assert history[2]["data"]["quantity"] == 4

    at_version = """
    query($version: Int, $at: DateTime) {
      orderAt(id: "timeline", version: $version, at: $at) {
        id version customerName items { productId quantity } total { amount }
        history { version }
      }
    }"""
    two = (await stack.gql(at_version, {"version": 2}))["orderAt"]
    assert two["version"] == 2
    assert two["customerName"] == "Customer 3"
    assert two["items"] == [{"productId": "p1", "quantity": 1}]
    assert two["total"]["amount"] == "2.42"  # 2.20 + 10% tax
    assert [e["version"] for e in two["history"]] == [1, 2]

    three = (await stack.gql(at_version, {"version": 3}))["orderAt"]
    assert three["total"]["amount"] == current_total

    past_the_end = (await stack.post(at_version, {"version": 99})).json()
    assert past_the_end["data"] == {"orderAt": None}
    assert past_the_end["errors"][0]["message"] == (
        "order timeline has no version 99: its last version is 3"
    )
    assert past_the_end["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    unknown = await stack.gql('{ orderAt(id: "no-such-order", version: 1) { id } }')
    assert unknown == {"orderAt": None}

    # createOrder appended versions 1 and 2 at one instant; addOrderItem came later.
    at = datetime.fromisoformat(history[0]["occurredAt"])
    by_instant = (await stack.gql(at_version, {"at": at.isoformat()}))["orderAt"]
    assert by_instant["version"] == 2
    latest = (await stack.gql(at_version, {"at": history[2]["occurredAt"]}))["orderAt"]
    assert latest["version"] == 3
    before = (at - timedelta(seconds=1)).isoformat()
    assert (await stack.gql(at_version, {"at": before}))["orderAt"] is None

    response = await stack.post(at_version, {"version": 1, "at": at.isoformat()})
    assert response.json()["errors"][0]["message"] == (
        "orderAt needs exactly one of `version` or `at`"
    )
    response = await stack.post(at_version, {"at": "2026-01-01T00:00:00"})
    assert response.status_code == 400
    assert "has no offset" in response.json()["errors"][0]["message"]

    order_history = (await stack.gql('{ order(id: "timeline") { history { type } } }'))["order"][
        "history"
    ]
    assert len(order_history) == 3


async def test_projection_statuses(stack: ApiStack) -> None:
    await stack.caught_up()
    statuses = (
        await stack.gql(
            "{ projections { name position headPosition lag state lastError updatedAt } }"
        )
    )["projections"]
    assert {s["name"] for s in statuses} == {"orders", "customers", "products"}
    for status in statuses:
        assert status["lag"] == 0 and status["state"] == "RUNNING"
        assert status["lastError"] is None
        assert datetime.fromisoformat(status["updatedAt"]).tzinfo is not None


async def test_dead_letters_page_and_retry(stack: ApiStack) -> None:
    stored = stack.runtime.backend.followers.dead_letters
    failed_at = datetime.now(UTC)
    letters = [
        DeadLetter(
            owner=LetterOwner("orders", 1),
            key="Order-poison",
            event_id=f"event-{n}",
            stream_id="Order-poison",
            stream_version=n,
            log_position=LogPosition(n, n),
            event_type="OrderItemAdded",
            error="ValueError: poison",
            attempts=4,
            failed_at=failed_at,
        )
        for n in range(1, 4)
    ]
    await stored.park(letters)
    query = """
    query($after: String) {
      deadLetters(first: 2, after: $after) {
        id subscriber eventId streamId position error attempts failedAt cursor
      }
    }"""
    first = (await stack.gql(query, {"after": None}))["deadLetters"]
    assert [d["id"] for d in first] == ["orders:v1:event-1", "orders:v1:event-2"]
    assert first[0]["attempts"] == 4 and first[0]["position"] == "1"
    rest = (await stack.gql(query, {"after": first[-1]["cursor"]}))["deadLetters"]
    assert [d["id"] for d in rest] == ["orders:v1:event-3"]
    by_id = (await stack.gql(query, {"after": "orders:v1:event-1"}))["deadLetters"]
    assert [d["id"] for d in by_id] == ["orders:v1:event-2", "orders:v1:event-3"]

    retry = """
    mutation($id: ID!) {
      retryDeadLetter(id: $id) {
        __typename ... on DeadLetterRetried { id } ... on NotFoundError { code id message }
      }
    }"""
    retried = (await stack.gql(retry, {"id": "orders:v1:event-2"}))["retryDeadLetter"]
    assert retried == {"__typename": "DeadLetterRetried", "id": "orders:v1:event-2"}
    marked = await stored.get("orders:v1:event-3")
    assert marked is not None and marked.retry_requested is True
    missing = (await stack.gql(retry, {"id": "nope"}))["retryDeadLetter"]
    assert missing["__typename"] == "NotFoundError" and missing["id"] == "nope"
    await stored.remove([letter.id for letter in letters])
