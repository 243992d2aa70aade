"""Projections: pure functions from events to read documents (see `base`)."""

from __future__ import annotations

from read_model.projections.base import DocKey, ProjectedEvent, Projection, View
from read_model.projections.customers import CustomersProjection
from read_model.projections.orders import OrdersProjection
from read_model.projections.products import ProductsProjection

ALL_PROJECTIONS: tuple[Projection, ...] = (
    OrdersProjection(),
    CustomersProjection(),
    ProductsProjection(),
)

__all__ = [
    "ALL_PROJECTIONS",
    "CustomersProjection",
    "DocKey",
    "OrdersProjection",
    "ProductsProjection",
    "ProjectedEvent",
    "Projection",
    "View",
]
