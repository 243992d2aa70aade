"""The read model as one principal may see it (write_model/access.py is the rule).

`ScopedReadModel` has the reading methods of `ReadModel` that resolvers, DataLoaders and
connections use, and narrows each to what the principal may read: a customer's reads of
orders are filtered by its customer id, of customers by its own id, so someone else's
document answers exactly like a missing one, in lists, by id and in batches alike. The
operators' views (statuses, dead letters) are Forbidden to customers. Products are public.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from log_follower.status.view import FollowerStatus
from read_model.document_store.port import Document, Page, SortKey
from read_model.projections.customers import CUSTOMERS
from read_model.projections.orders import ORDERS
from read_model.service import LetterList, ReadModel
from read_model.status import ProjectionStatus
from write_model import access
from write_model.command_context import Principal

# Per logical collection: the document field that names the customer it belongs to.
OWNER_FIELD: Mapping[str, str] = {ORDERS: "customerId", CUSTOMERS: "_id"}


class ScopedReadModel:
    def __init__(self, read_model: ReadModel, principal: Principal) -> None:
        self.unscoped = read_model
        self.principal = principal
        self._restricted = not access.sees_everything(principal)

    def may_read_order_of(self, customer_id: str | None) -> bool:
        """Whether the principal may read an order of customer `customer_id`."""
        return access.may_act_for(self.principal, customer_id)

    def may_read(self, logical: str, document: Document) -> bool:
        field = OWNER_FIELD.get(logical)
        return field is None or access.may_act_for(self.principal, document.get(field))

    def _scoped_filter(self, logical: str, filter: Mapping[str, Any]) -> dict[str, Any] | None:
        """`filter` narrowed to the principal's own documents; None: nothing can match (it
        asks for someone else's)."""
        field = OWNER_FIELD.get(logical)
        if not self._restricted or field is None:
            return dict(filter)
        own = self.principal.id
        if field in filter and filter[field] != own:
            return None
        return {**filter, field: own}

    async def get_many(self, logical: str, ids: Sequence[str]) -> dict[str, Document]:
        found = await self.unscoped.get_many(logical, ids)
        return {key: doc for key, doc in found.items() if self.may_read(logical, doc)}

    async def get(self, logical: str, document_id: str) -> Document | None:
        doc = await self.unscoped.get(logical, document_id)
        return doc if doc is not None and self.may_read(logical, doc) else None

    async def find(
        self,
        logical: str,
        filter: Mapping[str, Any],
        sort: Sequence[SortKey],
        limit: int,
        after: Sequence[Any] | None = None,
    ) -> Page:
        scoped = self._scoped_filter(logical, filter)
        if scoped is None:
            return Page([], False)
        return await self.unscoped.find(logical, scoped, sort, limit, after)

    async def count(self, logical: str, filter: Mapping[str, Any]) -> int:
        scoped = self._scoped_filter(logical, filter)
        return 0 if scoped is None else await self.unscoped.count(logical, scoped)

    async def statuses(self) -> list[ProjectionStatus]:
        access.check_operator(self.principal, "projections")
        return await self.unscoped.statuses()

    async def processes(self) -> list[FollowerStatus]:
        access.check_operator(self.principal, "processes")
        return await self.unscoped.processes()

    @property
    def dead_letters(self) -> LetterList:
        access.check_operator(self.principal, "dead letters")
        return self.unscoped.dead_letters
