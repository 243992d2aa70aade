"""The read model as one principal may see it (write_model/access.py is the rule).

`ScopedReadModel` has the reading methods of `ReadModel` that resolvers, DataLoaders and
connections use, and narrows each to what the principal may read, as each projection
declares it beside its documents (`Projection.owners`): a customer's reads of a collection
owned by customers are filtered by the owner field (its customer id on orders, its own id
on customers), so someone else's document answers exactly like a missing one, in lists, by
id and in batches alike; a PUBLIC collection (products) is read by all. A collection whose
projection declares nothing is refused to everyone (`OwnershipUndeclared`): forgetting the
declaration fails at the first read instead of leaking. The operators' views (statuses,
dead letters) are Forbidden to customers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from log_follower.status.view import FollowerStatus
from read_model.document_store.port import Document, Page, SortKey
from read_model.projections import ALL_PROJECTIONS
from read_model.projections.base import PUBLIC, Owner, Projection
from read_model.service import LetterList, ReadModel
from read_model.status import ProjectionStatus
from write_model import access
from write_model.command_context import Principal


class OwnershipUndeclared(LookupError):
    """No projection declares whose the collection's documents are: nobody may read it
    until its projection does (`Projection.owners`)."""

    def __init__(self, logical: str) -> None:
        super().__init__(
            f"collection {logical!r} declares no owner: its projection must say which field "
            "names the customer its documents belong to, or that it is public (owners)"
        )
        self.logical = logical


class Ownership:
    """Whose the documents of each collection are, as the projections declare it."""

    def __init__(self, projections: Sequence[Projection]) -> None:
        self._owners: dict[str, Owner] = {}
        self.undeclared: list[str] = []
        for projection in projections:
            declared = getattr(projection, "owners", {})
            for logical in projection.collections:
                if logical in declared:
                    self._owners[logical] = declared[logical]
                else:
                    self.undeclared.append(logical)

    def owner_field(self, logical: str) -> str | None:
        """The field naming the customer a document belongs to; None: public."""
        owner = self._owners.get(logical)
        if owner is None:
            raise OwnershipUndeclared(logical)
        return None if owner is PUBLIC else owner


OWNERSHIP = Ownership(ALL_PROJECTIONS)


class ScopedReadModel:
    def __init__(
        self,
        read_model: ReadModel,
        principal: Principal,
        ownership: Ownership = OWNERSHIP,
        *,
        fresh: bool = False,
    ) -> None:
        self.unscoped = read_model
        self.principal = principal
        self.fresh = fresh  # documents by id past any read cache (after a consistency wait)
        self._ownership = ownership
        self._restricted = not access.sees_everything(principal)

    def may_read_order_of(self, customer_id: str | None) -> bool:
        """Whether the principal may read an order of customer `customer_id`."""
        return access.may_act_for(self.principal, customer_id)

    def may_read(self, logical: str, document: Document) -> bool:
        return self._may_read(self._ownership.owner_field(logical), document)

    def _may_read(self, owner_field: str | None, document: Document) -> bool:
        return owner_field is None or access.may_act_for(self.principal, document.get(owner_field))

    def _scoped_filter(self, logical: str, filter: Mapping[str, Any]) -> dict[str, Any] | None:
        """`filter` narrowed to the principal's own documents; None: nothing can match (it
        asks for someone else's)."""
        field = self._ownership.owner_field(logical)
        if not self._restricted or field is None:
            return dict(filter)
        own = self.principal.id
        if field in filter and filter[field] != own:
            return None
        return {**filter, field: own}

    async def get_many(self, logical: str, ids: Sequence[str]) -> dict[str, Document]:
        field = self._ownership.owner_field(logical)  # refused before anything is read
        found = await self.unscoped.get_many(logical, ids, fresh=self.fresh)
        return {key: doc for key, doc in found.items() if self._may_read(field, doc)}

    async def get(self, logical: str, document_id: str) -> Document | None:
        field = self._ownership.owner_field(logical)  # refused before anything is read
        doc = await self.unscoped.get(logical, document_id, fresh=self.fresh)
        return doc if doc is not None and self._may_read(field, doc) else None

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
