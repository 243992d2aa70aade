"""DocumentStore conformance: every adapter (memory, mongo) passes all of it.

On the Mongo side this runs against the test Mongo-wire server (SecantusDB, or a real
mongod given by MONGO_URL or on PATH), so it also pins down what the adapter relies on
there: guarded upserts that collide on `_id`, write errors reported per statement, `$or`
keyset seeks.
Datetimes are millisecond-rounded: BSON keeps milliseconds.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from read_model.document_store.mongo import MongoDocumentStore, MongoUnavailableError
from read_model.document_store.port import (
    Checkpoint,
    Document,
    DocumentWriteConflict,
    GuardedPut,
    ProjectionState,
    RebuildStatus,
    SortKey,
    UpdateMany,
    position_key,
)
from tests.contracts.document_store_harness import DocumentStoreHarness
from write_model.envelope import LogPosition

WHEN = datetime(2026, 11, 26, 13, 24, 5, 123000, tzinfo=UTC)


def pos(transaction_id: int, position: int = 0) -> str:
    return position_key(LogPosition(transaction_id, position))


def doc(document_id: str, at: str, **fields: Any) -> Document:
    return {"_id": document_id, "_pos": at, **fields}


def ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


async def put_all(h: DocumentStoreHarness, collection: str, *documents: Document) -> None:
    await h.store.bulk_write([GuardedPut(collection, d) for d in documents])


async def page_through(
    h: DocumentStoreHarness,
    collection: str,
    filter: dict[str, Any],
    sort: list[SortKey],
    limit: int,
) -> tuple[list[str], list[bool]]:
    """Every page's ids, following `after` cursors; and each page's has_next_page."""
    ids: list[str] = []
    flags: list[bool] = []
    after: list[Any] | None = None
    for _ in range(50):
        page = await h.store.find(collection, filter, sort, limit, after)
        ids.extend(d["_id"] for d in page.documents)
        flags.append(page.has_next_page)
        if not page.has_next_page:
            return ids, flags
        last = page.documents[-1]
        after = [_value(last, k.field) for k in sort] + [last["_id"]]
    raise AssertionError("paging did not end")


def _value(document: Document, path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


# ------------------------------------------------------------------ get, get_many


async def test_get_returns_none_for_a_missing_document(doc_harness: DocumentStoreHarness) -> None:
    collection = doc_harness.collection()
    assert await doc_harness.store.get(collection, "nope") is None
    await put_all(doc_harness, collection, doc("a", pos(1)))
    assert await doc_harness.store.get(collection, "nope") is None


async def test_a_put_document_reads_back_equal_with_nested_values_and_aware_datetimes(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection("orders")
    document = doc(
        "o-1",
        pos(7, 3),
        status="PLACED",
        total={"amount": "12.30", "currency": "USD", "minor": 1230},
        items=[{"productId": "pen", "quantity": 2, "price": "6.15"}],
        productIds=["pen"],
        placedAt=WHEN,
        note=None,
        paid=False,
        version=3,
    )

    await put_all(doc_harness, collection, document)
    found = await doc_harness.store.get(collection, "o-1")

    assert found == document
    assert found is not None
    assert found["placedAt"].utcoffset() == timedelta(0)
    assert found["_pos"] == pos(7, 3)


async def test_documents_are_copied_in_and_out(doc_harness: DocumentStoreHarness) -> None:
    collection = doc_harness.collection()
    document = doc("a", pos(1), items=[{"sku": "pen"}], tags=["x"])
    await put_all(doc_harness, collection, document)

    document["items"][0]["sku"] = "changed by the caller after the put"
    document["tags"].append("y")
    read = await doc_harness.store.get(collection, "a")
    assert read is not None
    read["items"].append({"sku": "changed by the caller after the get"})
    many = await doc_harness.store.get_many(collection, ["a"])
    many["a"]["tags"].clear()

    assert await doc_harness.store.get(collection, "a") == doc(
        "a", pos(1), items=[{"sku": "pen"}], tags=["x"]
    )


async def test_get_many_returns_the_existing_documents_by_id(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection()
    await put_all(doc_harness, collection, *(doc(f"d{i}", pos(1, i), n=i) for i in range(5)))

    found = await doc_harness.store.get_many(collection, ["d3", "missing", "d0", "d3"])

    assert found == {"d3": doc("d3", pos(1, 3), n=3), "d0": doc("d0", pos(1, 0), n=0)}
    assert await doc_harness.store.get_many(collection, []) == {}
    assert await doc_harness.store.get_many(doc_harness.collection("none"), ["d1"]) == {}


# ------------------------------------------------------------------- guarded puts


async def test_a_guarded_put_inserts_a_new_document_and_replaces_an_older_one(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection()
    await put_all(doc_harness, collection, doc("a", pos(1, 1), status="DRAFT", draftOnly=True))
    assert await doc_harness.store.get(collection, "a") == doc(
        "a", pos(1, 1), status="DRAFT", draftOnly=True
    )

    await put_all(doc_harness, collection, doc("a", pos(1, 2), status="PLACED"))

    # A replace, not a merge: fields of the older version are gone.
    assert await doc_harness.store.get(collection, "a") == doc("a", pos(1, 2), status="PLACED")


async def test_an_older_or_equal_put_is_a_no_op_while_later_puts_of_the_same_write_apply(
    doc_harness: DocumentStoreHarness,
) -> None:
    orders, customers = doc_harness.collection("orders"), doc_harness.collection("customers")
    await put_all(
        doc_harness,
        orders,
        doc("a", pos(5), v="a@5"),
        doc("b", pos(5), v="b@5"),
        doc("e", pos(9), v="e@9"),
    )
    await put_all(doc_harness, customers, doc("c-1", pos(5), v="c-1@5"))

    await doc_harness.store.bulk_write(
        [
            GuardedPut(orders, doc("a", pos(4, 999), v="a@4 older")),  # first statement
            GuardedPut(orders, doc("c", pos(6), v="c@6 new")),
            GuardedPut(orders, doc("a", pos(5), v="a@5 equal, other content")),
            GuardedPut(customers, doc("c-1", pos(5), v="c-1@5 equal")),
            GuardedPut(orders, doc("b", pos(6), v="b@6 newer")),
            GuardedPut(customers, doc("c-2", pos(6), v="c-2@6 new")),
            GuardedPut(orders, doc("d", pos(6), v="d@6 new")),
            GuardedPut(orders, doc("e", pos(8), v="e@8 older")),  # last statement
        ]
    )

    assert await doc_harness.store.get_many(orders, ["a", "b", "c", "d", "e"]) == {
        "a": doc("a", pos(5), v="a@5"),
        "b": doc("b", pos(6), v="b@6 newer"),
        "c": doc("c", pos(6), v="c@6 new"),
        "d": doc("d", pos(6), v="d@6 new"),
        "e": doc("e", pos(9), v="e@9"),
    }
    assert await doc_harness.store.get_many(customers, ["c-1", "c-2"]) == {
        "c-1": doc("c-1", pos(5), v="c-1@5"),
        "c-2": doc("c-2", pos(6), v="c-2@6 new"),
    }


async def test_many_consecutive_ignored_puts_do_not_stop_the_write(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection()
    await put_all(doc_harness, collection, *(doc(f"old{i}", pos(10), v=1) for i in range(20)))

    replay = [doc(f"old{i}", pos(3), v=2) for i in range(20)]
    fresh = [doc(f"new{i}", pos(11), v=3) for i in range(5)]
    await put_all(doc_harness, collection, *replay, *fresh, *replay)

    assert await doc_harness.store.count(collection, {"v": 1}) == 20
    assert await doc_harness.store.count(collection, {"v": 3}) == 5
    assert await doc_harness.store.count(collection, {}) == 25


async def test_the_guard_orders_by_transaction_id_then_position_with_big_ids(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection()
    big = 2**40
    await put_all(doc_harness, collection, doc("a", pos(big, 1), v="later transaction"))

    # A higher position in an earlier transaction is older.
    await put_all(doc_harness, collection, doc("a", pos(big - 1, 10**12), v="earlier"))
    assert (await doc_harness.store.get(collection, "a") or {})["v"] == "later transaction"

    await put_all(doc_harness, collection, doc("a", pos(big, 2), v="next position"))
    assert (await doc_harness.store.get(collection, "a") or {})["v"] == "next position"


async def test_the_newest_of_several_puts_of_one_document_in_one_write_wins(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection()

    await put_all(
        doc_harness,
        collection,
        doc("a", pos(3), v=3),
        doc("a", pos(5), v=5),
        doc("a", pos(4), v=4),
    )

    assert await doc_harness.store.get(collection, "a") == doc("a", pos(5), v=5)


async def test_a_put_without_id_or_position_is_rejected_before_anything_is_written(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection()

    with pytest.raises(ValueError, match="_pos"):
        await doc_harness.store.bulk_write(
            [GuardedPut(collection, doc("ok", pos(1))), GuardedPut(collection, {"_id": "x"})]
        )
    with pytest.raises(ValueError, match="_id"):
        await doc_harness.store.bulk_write([GuardedPut(collection, {"_pos": pos(1)})])

    assert await doc_harness.store.count(collection, {}) == 0


# ----------------------------------------------------------------------- updates


async def _orders_with_products(h: DocumentStoreHarness) -> str:
    collection = h.collection("orders")
    await put_all(
        h,
        collection,
        doc(
            "o-1",
            pos(1, 1),
            productIds=["p-1", "p-2"],
            productNames={"p-1": "Pen", "p-2": "Ink"},
            customerId="c-1",
        ),
        doc("o-2", pos(1, 2), productIds=["p-2"], productNames={"p-2": "Ink"}, customerId="c-2"),
        doc("o-3", pos(1, 3), productIds=["p-1"], productNames={"p-1": "Pen"}, customerId="c-1"),
    )
    return collection


async def test_update_many_sets_dotted_paths_where_an_array_contains_the_value(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = await _orders_with_products(doc_harness)

    await doc_harness.store.bulk_write(
        [], [UpdateMany(collection, {"productIds": "p-1"}, {"productNames.p-1": "Fountain pen"})]
    )

    found = await doc_harness.store.get_many(collection, ["o-1", "o-2", "o-3"])
    assert found["o-1"]["productNames"] == {"p-1": "Fountain pen", "p-2": "Ink"}
    assert found["o-2"]["productNames"] == {"p-2": "Ink"}
    assert found["o-3"]["productNames"] == {"p-1": "Fountain pen"}
    # Updates do not move the position guard.
    assert [found[i]["_pos"] for i in ("o-1", "o-2", "o-3")] == [pos(1, 1), pos(1, 2), pos(1, 3)]


async def test_updates_run_after_the_puts_of_the_same_write_and_in_the_order_given(
    doc_harness: DocumentStoreHarness,
) -> None:
    orders = await _orders_with_products(doc_harness)
    customers = doc_harness.collection("customers")

    await doc_harness.store.bulk_write(
        [
            GuardedPut(orders, doc("o-4", pos(2), customerId="c-1", customer={"name": "Old"})),
            GuardedPut(customers, doc("c-1", pos(2), name="Old")),
        ],
        [
            UpdateMany(orders, {"customerId": "c-1"}, {"customer.name": "Ann"}),
            UpdateMany(customers, {"_id": "c-1"}, {"name": "Ann"}),
            UpdateMany(orders, {"customerId": "c-1"}, {"customer.name": "Bea", "vip": True}),
            UpdateMany(customers, {"_id": "c-1"}, {"name": "Bea"}),
        ],
    )

    found = await doc_harness.store.get_many(orders, ["o-1", "o-2", "o-3", "o-4"])
    # The put of o-4 came first, so the updates reached it; missing parents are created.
    assert {i: d.get("customer") for i, d in found.items()} == {
        "o-1": {"name": "Bea"},
        "o-2": None,
        "o-3": {"name": "Bea"},
        "o-4": {"name": "Bea"},
    }
    assert found["o-4"]["vip"] is True and "vip" not in found["o-2"]
    assert await doc_harness.store.get(customers, "c-1") == doc("c-1", pos(2), name="Bea")


async def test_replaying_a_bulk_write_converges_to_the_same_documents(
    doc_harness: DocumentStoreHarness,
) -> None:
    orders = await _orders_with_products(doc_harness)
    puts = [
        GuardedPut(orders, doc("o-1", pos(3), productIds=["p-1"], productNames={"p-1": "Pen"})),
        GuardedPut(orders, doc("o-5", pos(3), productIds=["p-1"], productNames={"p-1": "Pen"})),
    ]
    updates = [UpdateMany(orders, {"productIds": "p-1"}, {"productNames.p-1": "Quill"})]

    await doc_harness.store.bulk_write(puts, updates)
    first = await doc_harness.store.get_many(orders, ["o-1", "o-2", "o-3", "o-5"])
    await doc_harness.store.bulk_write(puts, updates)

    assert await doc_harness.store.get_many(orders, ["o-1", "o-2", "o-3", "o-5"]) == first
    assert first["o-5"]["productNames"] == {"p-1": "Quill"}


async def test_update_many_on_a_missing_collection_or_with_no_match_changes_nothing(
    doc_harness: DocumentStoreHarness,
) -> None:
    orders = await _orders_with_products(doc_harness)
    before = await doc_harness.store.get_many(orders, ["o-1", "o-2", "o-3"])

    await doc_harness.store.bulk_write(
        [],
        [
            UpdateMany(doc_harness.collection("never"), {"x": 1}, {"y": 2}),
            UpdateMany(orders, {"productIds": "p-9"}, {"productNames.p-9": "None"}),
            UpdateMany(orders, {"customerId": "c-1"}, {}),
        ],
    )

    assert await doc_harness.store.get_many(orders, ["o-1", "o-2", "o-3"]) == before


async def test_a_refused_update_raises_document_write_conflict(
    doc_harness: DocumentStoreHarness,
) -> None:
    orders = doc_harness.collection("orders")
    await put_all(doc_harness, orders, doc("o-1", pos(1), status="PLACED"))

    with pytest.raises(DocumentWriteConflict) as refused:
        await doc_harness.store.bulk_write(
            [GuardedPut(orders, doc("o-2", pos(2), status="PLACED"))],
            [UpdateMany(orders, {"_id": "o-1"}, {"_id": "o-x"})],
        )
    assert refused.value.collection == orders
    assert refused.value.messages and "_id" in refused.value.messages[0]
    # The puts before the refused update were applied (bulk writes are not atomic).
    assert await doc_harness.store.get(orders, "o-2") == doc("o-2", pos(2), status="PLACED")

    with pytest.raises(DocumentWriteConflict):  # a field inside a string
        await doc_harness.store.bulk_write(
            [], [UpdateMany(orders, {"_id": "o-1"}, {"status.code": 1})]
        )
    assert await doc_harness.store.get(orders, "o-1") == doc("o-1", pos(1), status="PLACED")


# -------------------------------------------------------------------------- find


async def _insert_totals(h: DocumentStoreHarness, collection: str, totals: dict[str, int]) -> None:
    await put_all(
        h,
        collection,
        *(
            doc(i, pos(1), group="g", total={"amount": f"{m / 100:.2f}", "minor": m})
            for i, m in totals.items()
        ),
        doc("other-group", pos(1), group="h", total={"amount": "99.99", "minor": 9999}),
    )


def _expected_order(totals: dict[str, int], direction: int) -> list[str]:
    return [i for i, _ in sorted(totals.items(), key=lambda kv: (direction * kv[1], kv[0]))]


async def test_find_pages_descending_by_keyset_stable_under_inserts(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection("orders")
    totals = {
        "o1": 500,
        "o2": 900,
        "o3": 700,
        "o4": 700,
        "o5": 100,
        "o6": 300,
        "o7": 700,
        "o8": 200,
    }
    await _insert_totals(doc_harness, collection, totals)
    sort = [SortKey("total.minor", -1)]
    expected = _expected_order(totals, -1)
    assert expected == ["o2", "o3", "o4", "o7", "o1", "o6", "o8", "o5"]

    first = await doc_harness.store.find(collection, {"group": "g"}, sort, 3)
    assert [d["_id"] for d in first.documents] == expected[:3]
    assert first.has_next_page
    cursor = [first.documents[-1]["total"]["minor"], first.documents[-1]["_id"]]

    # While the reader holds its cursor: one document lands before it, one after.
    await put_all(
        doc_harness,
        collection,
        doc("o0", pos(2), group="g", total={"amount": "8.00", "minor": 800}),
        doc("o9", pos(2), group="g", total={"amount": "2.50", "minor": 250}),
    )

    second = await doc_harness.store.find(collection, {"group": "g"}, sort, 3, cursor)
    assert [d["_id"] for d in second.documents] == ["o7", "o1", "o6"]
    assert second.has_next_page
    cursor = [second.documents[-1]["total"]["minor"], second.documents[-1]["_id"]]
    third = await doc_harness.store.find(collection, {"group": "g"}, sort, 3, cursor)
    assert [d["_id"] for d in third.documents] == ["o9", "o8", "o5"]
    assert not third.has_next_page


async def test_find_pages_ascending_with_ties_broken_by_id(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection("orders")
    totals = {"o1": 500, "o2": 900, "o3": 700, "o4": 700, "o5": 100, "o6": 300, "o7": 700}
    await _insert_totals(doc_harness, collection, totals)

    ids, flags = await page_through(
        doc_harness, collection, {"group": "g"}, [SortKey("total.minor", 1)], 3
    )

    assert ids == _expected_order(totals, 1) == ["o5", "o6", "o1", "o3", "o4", "o7", "o2"]
    assert flags == [True, True, False]


async def test_find_pages_through_mixed_sort_directions(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection("orders")
    rows = {
        "a": ("PLACED", 300),
        "b": ("DRAFT", 100),
        "c": ("PLACED", 300),
        "d": ("SHIPPED", 50),
        "e": ("DRAFT", 700),
        "f": ("PLACED", 900),
        "g": ("DRAFT", 100),
        "h": ("PLACED", 10),
        "i": ("SHIPPED", 50),
    }
    await put_all(
        doc_harness,
        collection,
        *(doc(i, pos(1), status=s, minor=m, group="g") for i, (s, m) in rows.items()),
    )
    sort = [SortKey("status", 1), SortKey("minor", -1)]

    ids, flags = await page_through(doc_harness, collection, {"group": "g"}, sort, 3)
    reverse_ids, _ = await page_through(
        doc_harness, collection, {}, [SortKey("status", -1), SortKey("minor", 1)], 2
    )

    assert ids == ["e", "b", "g", "f", "a", "c", "h", "d", "i"]
    assert flags == [True, True, False]
    assert reverse_ids == ["d", "i", "h", "a", "c", "f", "b", "g", "e"]


async def test_find_sorts_missing_values_first_ascending_and_last_descending(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection()
    await put_all(
        doc_harness,
        collection,
        doc("a", pos(1), rank=2),
        doc("b", pos(1)),
        doc("c", pos(1), rank=1),
        doc("d", pos(1), rank=None),
        doc("e", pos(1), rank=2),
        doc("f", pos(1)),
    )

    ascending, _ = await page_through(doc_harness, collection, {}, [SortKey("rank", 1)], 2)
    descending, _ = await page_through(doc_harness, collection, {}, [SortKey("rank", -1)], 2)

    assert ascending == ["b", "d", "f", "c", "a", "e"]
    assert descending == ["a", "e", "c", "b", "d", "f"]


async def test_find_filters_by_equality_including_array_membership(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection()
    await put_all(
        doc_harness,
        collection,
        doc("a", pos(1), group="g", tags=["red", "big"]),
        doc("b", pos(1), group="g", tags=["blue"]),
        doc("c", pos(1), group="h", tags=["red"]),
        doc("d", pos(1), group="g", tags=["red"], customer={"id": "c-1"}),
    )

    red = await doc_harness.store.find(collection, {"group": "g", "tags": "red"}, [], 10)
    nested = await doc_harness.store.find(collection, {"customer.id": "c-1"}, [], 10)

    assert [d["_id"] for d in red.documents] == ["a", "d"]
    assert not red.has_next_page
    assert [d["_id"] for d in nested.documents] == ["d"]


async def test_filters_answer_for_the_documents_as_they_are_after_every_kind_of_write(
    doc_harness: DocumentStoreHarness,
) -> None:
    """Given documents found by a filter once; when puts, updates and deletes change the
    filtered fields; then each later filtered read, update and count sees the change."""
    store, collection = doc_harness.store, doc_harness.collection()
    await put_all(
        doc_harness,
        collection,
        doc("a", pos(1), customerId="c-1", productIds=["p-1", "p-2"]),
        doc("b", pos(1), customerId="c-1", productIds=["p-2"]),
        doc("c", pos(1), customerId="c-2", productIds=["p-1"]),
    )
    assert await store.count(collection, {"customerId": "c-1"}) == 2
    assert await store.count(collection, {"productIds": "p-1"}) == 2

    await put_all(doc_harness, collection, doc("a", pos(2), customerId="c-2", productIds=["p-3"]))
    await store.bulk_write(
        [], [UpdateMany(collection, {"productIds": "p-2"}, {"customerId": "c-3"})]
    )
    await store.delete_many(collection, {"customerId": "c-2", "productIds": "p-1"})
    await put_all(doc_harness, collection, doc("d", pos(3), customerId="c-1", productIds=["p-1"]))

    by_customer = await store.find(collection, {"customerId": "c-1"}, [], 10)
    assert [d["_id"] for d in by_customer.documents] == ["d"]
    assert [
        d["_id"] for d in (await store.find(collection, {"customerId": "c-3"}, [], 10)).documents
    ] == ["b"]
    assert await store.count(collection, {"customerId": "c-2"}) == 1  # "a", moved to c-2
    assert await store.count(collection, {"productIds": "p-1"}) == 1  # "d"; "c" deleted
    assert await store.count(collection, {"productIds": "p-2"}) == 1  # "b"; "a" lost p-2


async def test_find_with_a_limit_equal_to_what_is_left_has_no_next_page(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection()
    await put_all(doc_harness, collection, *(doc(f"d{i}", pos(1), n=i) for i in range(4)))

    exact = await doc_harness.store.find(collection, {}, [SortKey("n", -1)], 4)
    one_short = await doc_harness.store.find(collection, {}, [SortKey("n", -1)], 3)
    empty = await doc_harness.store.find(doc_harness.collection("none"), {}, [], 5)

    assert [d["_id"] for d in exact.documents] == ["d3", "d2", "d1", "d0"]
    assert not exact.has_next_page
    assert one_short.has_next_page and len(one_short.documents) == 3
    assert empty.documents == [] and not empty.has_next_page


async def test_find_rejects_a_cursor_of_the_wrong_length_and_a_non_positive_limit(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection()
    with pytest.raises(ValueError, match="after"):
        await doc_harness.store.find(collection, {}, [SortKey("n")], 3, after=[1])
    with pytest.raises(ValueError, match="limit"):
        await doc_harness.store.find(collection, {}, [SortKey("n")], 0)
    with pytest.raises(ValueError, match="equality"):
        await doc_harness.store.find(collection, {"n": {"$gt": 1}}, [], 3)


# ------------------------------------------------------------ count, delete, drop


async def test_count_by_equality_filter(doc_harness: DocumentStoreHarness) -> None:
    collection = await _orders_with_products(doc_harness)

    assert await doc_harness.store.count(collection, {}) == 3
    assert await doc_harness.store.count(collection, {"customerId": "c-1"}) == 2
    assert await doc_harness.store.count(collection, {"productIds": "p-2"}) == 2
    assert await doc_harness.store.count(collection, {"productIds": "p-9"}) == 0
    assert await doc_harness.store.count(doc_harness.collection("none"), {}) == 0


async def test_changed_after_lists_the_documents_past_a_position_lowest_first(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = doc_harness.collection()
    await put_all(
        doc_harness,
        collection,
        *(doc(f"d{i}", pos(2**40 + i, i), n=i) for i in (5, 1, 4, 2, 3)),
    )
    # A retried event moves `_pos` past its own position with a suffix: it sorts after.
    await put_all(doc_harness, collection, doc("d1", pos(2**40 + 1, 1) + ".9", n=10))

    after_two = await doc_harness.store.changed_after(collection, pos(2**40 + 2, 2), 10)
    assert [d["_id"] for d in after_two] == ["d3", "d4", "d5"]
    everything = await doc_harness.store.changed_after(collection, "", 10)
    assert [d["_id"] for d in everything] == ["d1", "d2", "d3", "d4", "d5"]
    assert everything[0]["n"] == 10
    first_two = await doc_harness.store.changed_after(collection, "", 2)
    assert [d["_id"] for d in first_two] == ["d1", "d2"]
    assert await doc_harness.store.changed_after(collection, pos(2**41), 10) == []
    assert await doc_harness.store.changed_after(doc_harness.collection("none"), "", 10) == []


async def test_delete_many_removes_only_the_matching_documents(
    doc_harness: DocumentStoreHarness,
) -> None:
    collection = await _orders_with_products(doc_harness)

    deleted = await doc_harness.store.delete_many(collection, {"productIds": "p-1"})

    assert deleted == 2
    assert list(await doc_harness.store.get_many(collection, ["o-1", "o-2", "o-3"])) == ["o-2"]
    assert await doc_harness.store.delete_many(collection, {"productIds": "p-1"}) == 0
    assert await doc_harness.store.delete_many(doc_harness.collection("none"), {}) == 0


async def test_drop_collection_removes_it_and_leaves_others(
    doc_harness: DocumentStoreHarness,
) -> None:
    doomed, kept = doc_harness.collection("doomed"), doc_harness.collection("kept")
    await put_all(doc_harness, doomed, doc("a", pos(5)), doc("b", pos(5)))
    await put_all(doc_harness, kept, doc("a", pos(5)))

    await doc_harness.store.drop_collection(doomed)
    await doc_harness.store.drop_collection(doc_harness.collection("never-created"))

    assert await doc_harness.store.count(doomed, {}) == 0
    assert await doc_harness.store.get(kept, "a") == doc("a", pos(5))
    # A dropped collection starts over: no guard survives it.
    await put_all(doc_harness, doomed, doc("a", pos(1), v="rebuilt"))
    assert await doc_harness.store.get(doomed, "a") == doc("a", pos(1), v="rebuilt")


async def test_ensure_index_is_idempotent(doc_harness: DocumentStoreHarness) -> None:
    collection = doc_harness.collection("orders")
    keys = [SortKey("customerId", 1), SortKey("placedAt", -1)]
    await put_all(doc_harness, collection, doc("o-1", pos(1), customerId="c-1", placedAt=WHEN))

    await doc_harness.store.ensure_index(collection, keys)
    await doc_harness.store.ensure_index(collection, keys)
    await doc_harness.store.ensure_index(collection, [SortKey("status", 1)])

    assert sorted(await doc_harness.backing.indexes(collection), key=len) == [
        (SortKey("status", 1),),
        tuple(keys),
    ]
    page = await doc_harness.store.find(
        collection, {"customerId": "c-1"}, [SortKey("placedAt", -1)], 10
    )
    assert [d["_id"] for d in page.documents] == ["o-1"]


# ------------------------------------------------------------------- checkpoints


async def test_load_checkpoint_is_none_for_an_unknown_name(
    doc_harness: DocumentStoreHarness,
) -> None:
    assert await doc_harness.store.load_checkpoint(doc_harness.checkpoint_name()) is None


async def test_a_checkpoint_round_trips_and_the_store_stamps_updated_at(
    doc_harness: DocumentStoreHarness,
) -> None:
    name = doc_harness.checkpoint_name("orders")
    sent = Checkpoint(
        name=name,
        position=LogPosition(2**40 + 7, 2**40 + 3),
        version=3,
        state=ProjectionState.REBUILDING,
        rebuild=RebuildStatus.READY,
        last_error="ValueError: boom at OrderPlaced",
        updated_at=datetime(2000, 1, 1, tzinfo=UTC),  # ignored: the store sets it
    )

    before = ms(datetime.now(UTC))
    await doc_harness.store.save_checkpoint(sent)
    after = datetime.now(UTC)
    loaded = await doc_harness.store.load_checkpoint(name)

    assert loaded is not None
    assert (
        loaded.name,
        loaded.position,
        loaded.version,
        loaded.state,
        loaded.rebuild,
        loaded.last_error,
    ) == (
        name,
        LogPosition(2**40 + 7, 2**40 + 3),
        3,
        ProjectionState.REBUILDING,
        RebuildStatus.READY,
        "ValueError: boom at OrderPlaced",
    )
    assert loaded.updated_at.utcoffset() == timedelta(0)
    assert before <= loaded.updated_at <= after


async def test_saving_a_checkpoint_again_replaces_it(doc_harness: DocumentStoreHarness) -> None:
    name = doc_harness.checkpoint_name()
    await doc_harness.store.save_checkpoint(
        Checkpoint(
            name,
            LogPosition(1, 1),
            version=2,
            state=ProjectionState.FAILED,
            rebuild=RebuildStatus.BUILDING,
            last_error="boom",
        )
    )
    first = await doc_harness.store.load_checkpoint(name)

    await doc_harness.store.save_checkpoint(Checkpoint(name, LogPosition(2**62, 5)))
    second = await doc_harness.store.load_checkpoint(name)

    assert first is not None and second is not None
    assert (
        second.position,
        second.version,
        second.state,
        second.rebuild,
        second.last_error,
    ) == (LogPosition(2**62, 5), 1, ProjectionState.RUNNING, None, None)
    assert second.updated_at >= first.updated_at


async def test_list_checkpoints_returns_them_sorted_by_name(
    doc_harness: DocumentStoreHarness,
) -> None:
    names = [doc_harness.checkpoint_name(label) for label in ("b", "a", "c")]
    for i, name in enumerate(names):
        await doc_harness.store.save_checkpoint(
            Checkpoint(name, LogPosition(2**40, i), state=ProjectionState.CATCHING_UP)
        )

    listed = [c for c in await doc_harness.store.list_checkpoints() if c.name in names]

    assert [c.name for c in listed] == sorted(names)
    assert {c.name: c.position for c in listed} == {
        name: LogPosition(2**40, i) for i, name in enumerate(names)
    }
    assert all(c.state == ProjectionState.CATCHING_UP and c.updated_at is not None for c in listed)


# ------------------------------------------------------------------ mongo connect


async def test_connect_refuses_an_unreachable_server_without_quoting_the_password() -> None:
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    with pytest.raises(MongoUnavailableError) as unreachable:
        await MongoDocumentStore.connect(
            f"mongodb://reader:s3cret@127.0.0.1:{port}/", "orders", timeout_ms=300
        )

    message = str(unreachable.value)
    assert f"127.0.0.1:{port}" in message  # which server did not answer
    assert "s3cret" not in message
