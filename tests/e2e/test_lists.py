"""Lists through the contract: orders with filter, sort and cursors; a customer's orders;
the catalog and the customers, page by page."""

from __future__ import annotations

from typing import Any

from tests.e2e.client import (
    ADDRESS,
    Api,
    accepted,
    add_item,
    add_product,
    create_order,
    register_customer,
)

ORDERS_PAGE = """
query Orders($filter: OrderFilter, $sort: OrderSort, $first: Int, $after: String) {
  orders(filter: $filter, sort: $sort, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id status customerId total { amount } } }
  }
}
"""


async def all_pages(
    api: Api, document: str, field: str, variables: dict[str, Any], page_size: int
) -> tuple[list[dict[str, Any]], list[int], set[int]]:
    """Every node of a connection, following endCursor; the page sizes and totalCounts."""
    nodes: list[dict[str, Any]] = []
    sizes: list[int] = []
    totals: set[int] = set()
    after = None
    for _ in range(1000):
        data = await api.execute(document, {**variables, "first": page_size, "after": after})
        connection = data[field]
        edges = connection["edges"]
        sizes.append(len(edges))
        totals.add(connection["totalCount"])
        nodes.extend(edge["node"] for edge in edges)
        page = connection["pageInfo"]
        if edges:
            assert page["endCursor"] == edges[-1]["cursor"]
        assert all(edge["cursor"] for edge in edges)
        if not page["hasNextPage"]:
            return nodes, sizes, totals
        assert edges, "hasNextPage on an empty page"
        after = page["endCursor"]
    raise AssertionError("pagination did not end")


async def customer_with_orders(api: Api, uid: str, count: int) -> tuple[str, list[str], str]:
    """A customer with `count` draft orders of growing totals, in creation order; the last
    write's consistency token."""
    customer_id = (await register_customer(api, uid))["customerId"]
    sku = f"p-{uid}"
    await add_product(api, sku, "Pen", "2.50")
    order_ids = []
    token = ""
    for n in range(count):
        order_id = f"o{n}-{uid}"
        await create_order(api, order_id, customer_id, shippingAddress=ADDRESS)
        token = (await add_item(api, order_id, sku, n + 1))["consistencyToken"]
        order_ids.append(order_id)
    return customer_id, order_ids, token


async def wait_for(api: Api, order_id: str, customer_id: str, token: str) -> None:
    data = await api.execute(
        """
        query Wait($order: ID!, $customer: ID!, $token: String) {
          order(id: $order, consistencyToken: $token) { id }
          customer(id: $customer, consistencyToken: $token) { id }
        }
        """,
        {"order": order_id, "customer": customer_id, "token": token},
    )
    assert data["order"] and data["customer"]


async def test_orders_pages_by_cursor_without_gaps_or_duplicates(api: Api, uid: str) -> None:
    customer_id, order_ids, token = await customer_with_orders(api, uid, 5)
    await wait_for(api, order_ids[-1], customer_id, token)
    variables = {"filter": {"customerId": customer_id}}

    ascending, sizes, totals = await all_pages(
        api, ORDERS_PAGE, "orders", {**variables, "sort": "CREATED_AT_ASC"}, 2
    )
    assert [node["id"] for node in ascending] == order_ids
    assert sizes == [2, 2, 1]
    assert totals == {5}
    assert {node["customerId"] for node in ascending} == {customer_id}

    descending, _, _ = await all_pages(
        api, ORDERS_PAGE, "orders", {**variables, "sort": "CREATED_AT_DESC"}, 3
    )
    assert [node["id"] for node in descending] == order_ids[::-1]

    # CREATED_AT_DESC is the default sort.
    default, _, _ = await all_pages(api, ORDERS_PAGE, "orders", variables, 4)
    assert [node["id"] for node in default] == order_ids[::-1]

    by_total, _, _ = await all_pages(
        api, ORDERS_PAGE, "orders", {**variables, "sort": "TOTAL_DESC"}, 2
    )
    # Order n holds n+1 pens at 2.50, plus 10 % tax.
    assert [node["total"]["amount"] for node in by_total] == [
        "13.75",
        "11.00",
        "8.25",
        "5.50",
        "2.75",
    ]


async def test_a_cursor_stays_valid_when_orders_are_inserted(api: Api, uid: str) -> None:
    customer_id, order_ids, token = await customer_with_orders(api, uid, 4)
    await wait_for(api, order_ids[-1], customer_id, token)
    variables = {"filter": {"customerId": customer_id}, "sort": "CREATED_AT_ASC"}
    first = (await api.execute(ORDERS_PAGE, {**variables, "first": 2}))["orders"]
    assert [edge["node"]["id"] for edge in first["edges"]] == order_ids[:2]

    extra = f"o-late-{uid}"
    created = await create_order(api, extra, customer_id)
    await wait_for(api, extra, customer_id, created["consistencyToken"])

    rest = (
        await api.execute(
            ORDERS_PAGE, {**variables, "first": 10, "after": first["pageInfo"]["endCursor"]}
        )
    )["orders"]
    assert [edge["node"]["id"] for edge in rest["edges"]] == [*order_ids[2:], extra]
    assert rest["totalCount"] == 5
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_orders_filter_by_status(api: Api, uid: str) -> None:
    customer_id, order_ids, _ = await customer_with_orders(api, uid, 3)
    submitted = accepted(await api.mutate("submitOrder", {"orderId": order_ids[1]}))
    cancelled = accepted(await api.mutate("cancelOrder", {"orderId": order_ids[2], "reason": "no"}))
    await wait_for(api, order_ids[1], customer_id, submitted["consistencyToken"])
    await wait_for(api, order_ids[2], customer_id, cancelled["consistencyToken"])

    def ids(data: dict[str, Any]) -> list[str]:
        return [edge["node"]["id"] for edge in data["orders"]["edges"]]

    drafts = await api.execute(
        ORDERS_PAGE, {"filter": {"customerId": customer_id, "status": "DRAFT"}}
    )
    assert ids(drafts) == [order_ids[0]]
    assert drafts["orders"]["totalCount"] == 1
    cancelled_page = await api.execute(
        ORDERS_PAGE, {"filter": {"customerId": customer_id, "status": "CANCELLED"}}
    )
    assert ids(cancelled_page) == [order_ids[2]]
    assert cancelled_page["orders"]["edges"][0]["node"]["status"] == "CANCELLED"
    everything = await api.execute(ORDERS_PAGE, {"filter": {"customerId": customer_id}})
    assert everything["orders"]["totalCount"] == 3


async def test_orders_without_filter_include_new_orders(api: Api, uid: str) -> None:
    customer_id, order_ids, token = await customer_with_orders(api, uid, 2)
    await wait_for(api, order_ids[-1], customer_id, token)
    data = await api.execute(ORDERS_PAGE, {"first": 2})
    connection = data["orders"]
    assert connection["totalCount"] >= 2
    # Newest first by default: this test's orders are the newest ones.
    assert [edge["node"]["id"] for edge in connection["edges"]] == order_ids[::-1]


CUSTOMER_ORDERS = """
query CustomerOrders($id: ID!, $token: String, $first: Int, $after: String) {
  customer(id: $id, consistencyToken: $token) {
    id name email registeredAt orderCount version
    lifetimeValue { amount currency }
    orders(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id customerId customerName items { quantity } } }
    }
  }
}
"""


async def test_customer_with_order_count_and_orders(api: Api, uid: str) -> None:
    customer_id, order_ids, token = await customer_with_orders(api, uid, 3)
    first = (await api.execute(CUSTOMER_ORDERS, {"id": customer_id, "token": token, "first": 2}))[
        "customer"
    ]
    assert first["id"] == customer_id
    assert first["email"] == f"{uid}@example.com"
    assert first["orderCount"] == 3
    assert first["version"] == 1
    assert first["registeredAt"]
    assert first["lifetimeValue"] == {"amount": "0.00", "currency": "USD"}
    orders = first["orders"]
    assert orders["totalCount"] == 3
    assert orders["pageInfo"]["hasNextPage"] is True
    rest = (
        await api.execute(
            CUSTOMER_ORDERS,
            {"id": customer_id, "first": 2, "after": orders["pageInfo"]["endCursor"]},
        )
    )["customer"]["orders"]
    assert rest["pageInfo"]["hasNextPage"] is False
    seen = [edge["node"]["id"] for edge in orders["edges"] + rest["edges"]]
    assert sorted(seen) == sorted(order_ids)
    assert len(set(seen)) == 3
    for edge in orders["edges"] + rest["edges"]:
        assert edge["node"]["customerId"] == customer_id
        assert edge["node"]["customerName"] == f"Customer {uid}"


PRODUCTS_PAGE = """
query Products($first: Int, $after: String) {
  products(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id name price { amount currency } stockOnHand stockReserved
                          stockAvailable version } }
  }
}
"""

CUSTOMERS_PAGE = """
query Customers($first: Int, $after: String) {
  customers(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id name email orderCount } }
  }
}
"""


async def test_products_and_customers_page_through_everything(api: Api, uid: str) -> None:
    skus = [f"p{n}-{uid}" for n in range(3)]
    token = ""
    for n, sku in enumerate(skus):
        added = await add_product(api, sku, f"Item {n}", f"{n + 1}.99", stock=10 * n)
        token = added["consistencyToken"]
    customer = await register_customer(api, uid)
    await api.execute(
        """
        query Wait($sku: ID!, $customer: ID!, $token: String) {
          product(id: $sku, consistencyToken: $token) { id }
          customer(id: $customer, consistencyToken: $token) { id }
        }
        """,
        {
            "sku": skus[-1],
            "customer": customer["customerId"],
            "token": customer["consistencyToken"],
        },
    )
    assert token

    products, _, totals = await all_pages(api, PRODUCTS_PAGE, "products", {}, 7)
    ids = [node["id"] for node in products]
    assert len(ids) == len(set(ids)), "a product was listed twice across pages"
    assert len(totals) == 1 and totals.pop() == len(ids)
    by_id = {node["id"]: node for node in products}
    for n, sku in enumerate(skus):
        assert by_id[sku] == {
            "id": sku,
            "name": f"Item {n}",
            "price": {"amount": f"{n + 1}.99", "currency": "USD"},
            "stockOnHand": 10 * n,
            "stockReserved": 0,
            "stockAvailable": 10 * n,
            "version": 1,
        }

    customers, _, totals = await all_pages(api, CUSTOMERS_PAGE, "customers", {}, 7)
    ids = [node["id"] for node in customers]
    assert len(ids) == len(set(ids)), "a customer was listed twice across pages"
    assert len(totals) == 1 and totals.pop() == len(ids)
    assert customer["customerId"] in ids


async def test_a_consistency_token_covers_nested_fields_of_other_projections(
    api: Api, uid: str
) -> None:
    """Read-your-writes holds for the whole query, not only for its root field's
    projection: `customer(id, consistencyToken)` sees the order just created in
    `Customer.orders` (an orders document), and `order(id, consistencyToken)` sees the
    customer's new name in `Order.customer` (a customers document), each time."""
    customer_id = (await register_customer(api, uid))["customerId"]
    for n in range(25):
        order_id = f"o{n}-{uid}"
        created = await create_order(api, order_id, customer_id)
        customer = (
            await api.execute(
                CUSTOMER_ORDERS, {"id": customer_id, "token": created["consistencyToken"]}
            )
        )["customer"]
        assert customer["orderCount"] == n + 1
        assert customer["orders"]["totalCount"] == n + 1, (
            f"Customer.orders did not see order {order_id} created with the token it was given"
        )
        renamed = accepted(
            await api.mutate("renameCustomer", {"customerId": customer_id, "name": f"Name {n}"}),
            "CustomerAccepted",
        )
        data = await api.execute(
            """
            query O($id: ID!, $token: String) {
              order(id: $id, consistencyToken: $token) { customerName customer { name } }
            }
            """,
            {"id": order_id, "token": renamed["consistencyToken"]},
        )
        assert data["order"] == {"customerName": f"Name {n}", "customer": {"name": f"Name {n}"}}
