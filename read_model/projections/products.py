"""The `products` projection: one document per catalog entry, shaped for the GraphQL
`Product` type.

products/<productId>:
    {_id, name, price, stockOnHand, stockReserved, stockAvailable, version}

`stockAvailable` is `stockOnHand - stockReserved`; `version` is the Product stream's.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence

from read_model.document_store.port import Document, UpdateMany
from read_model.projections.base import PUBLIC, DocKey, Owner, ProjectedEvent, View
from read_model.projections.money import money_doc
from write_model.domain import product
from write_model.domain.product import (
    ProductAdded,
    ProductPriceChanged,
    ProductRenamed,
    ProductRestocked,
    ReservedStockShipped,
    ShippedStockReturned,
    StockReservationReleased,
    StockReserved,
)
from write_model.stream_ids import entity_id

PRODUCTS = "products"

_HANDLED = frozenset(cls.__name__ for cls in typing.get_args(product.ProductEvent))


class ProductsProjection:
    name = "products"
    collections: tuple[str, ...] = (PRODUCTS,)
    owners: Mapping[str, Owner] = {PRODUCTS: PUBLIC}

    def handles(self, event_type: str) -> bool:
        return event_type in _HANDLED

    def reads(self, event: ProjectedEvent) -> Sequence[DocKey]:
        return ()

    def keys(self, event: ProjectedEvent, view: View) -> Sequence[DocKey]:
        if type(event.event).__name__ not in _HANDLED:
            return ()
        return (DocKey(PRODUCTS, entity_id(event.recorded.stream_id, product.STREAM_TYPE)),)

    def evolve(
        self, key: DocKey, doc: Document | None, event: ProjectedEvent, view: View
    ) -> Document | None:
        match event.event:
            case ProductAdded(name=name, price=price, initial_stock=initial_stock):
                changed = {
                    **(doc or {}),
                    "_id": key.id,
                    "name": name,
                    "price": money_doc(price),
                    **_stock(initial_stock, 0),
                }
            case ProductRenamed(name=name):
                changed = {**_existing(key, doc, event), "name": name}
            case ProductPriceChanged(price=price):
                changed = {**_existing(key, doc, event), "price": money_doc(price)}
            case ProductRestocked(quantity=quantity):
                current = _existing(key, doc, event)
                on_hand = current["stockOnHand"] + quantity
                changed = {**current, **_stock(on_hand, current["stockReserved"])}
            case StockReserved(quantity=quantity):
                current = _existing(key, doc, event)
                reserved = current["stockReserved"] + quantity
                changed = {**current, **_stock(current["stockOnHand"], reserved)}
            case StockReservationReleased(quantity=quantity):
                current = _existing(key, doc, event)
                reserved = current["stockReserved"] - quantity
                changed = {**current, **_stock(current["stockOnHand"], reserved)}
            case ReservedStockShipped(quantity=quantity):
                current = _existing(key, doc, event)
                on_hand = current["stockOnHand"] - quantity
                changed = {**current, **_stock(on_hand, current["stockReserved"] - quantity)}
            case ShippedStockReturned(quantity=quantity):
                current = _existing(key, doc, event)
                on_hand = current["stockOnHand"] + quantity
                changed = {**current, **_stock(on_hand, current["stockReserved"])}
            case _:
                return doc
        changed["version"] = event.recorded.version
        return changed

    def effects(self, event: ProjectedEvent) -> Sequence[UpdateMany]:
        return ()

    def indexes(self) -> Mapping[str, Sequence[Sequence[tuple[str, int]]]]:
        return {}


def _stock(on_hand: int, reserved: int) -> dict[str, int]:
    return {
        "stockOnHand": on_hand,
        "stockReserved": reserved,
        "stockAvailable": on_hand - reserved,
    }


def _existing(key: DocKey, doc: Document | None, event: ProjectedEvent) -> Document:
    if doc is None:
        raise ValueError(f"{event.recorded.type} applied to product {key.id}, never added")
    return doc
