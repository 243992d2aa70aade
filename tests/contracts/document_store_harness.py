"""Per-adapter harnesses for the DocumentStore conformance suite.

A harness hands out fresh collection and checkpoint names (uuid-based, so tests never share
state and need no ordering) and removes what it handed out when the test ends.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from read_model.document_store.memory import InMemoryDocumentStore
from read_model.document_store.mongo import CHECKPOINTS, MongoDocumentStore

CONTRACT_DATABASE = "orders_contract"


@dataclass
class DocumentStoreHarness:
    store: InMemoryDocumentStore | MongoDocumentStore
    kind: Literal["memory", "mongo"]
    collections: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)

    def collection(self, label: str = "docs") -> str:
        name = f"{label}_{uuid.uuid4().hex[:12]}"
        self.collections.append(name)
        return name

    def checkpoint_name(self, label: str = "projection") -> str:
        name = f"contract-{label}-{uuid.uuid4().hex[:12]}"
        self.checkpoints.append(name)
        return name

    async def cleanup(self) -> None:
        for name in self.collections:
            await self.store.drop_collection(name)
        if isinstance(self.store, MongoDocumentStore) and self.checkpoints:
            await self.store.database[CHECKPOINTS].delete_many({"_id": {"$in": self.checkpoints}})


@contextlib.asynccontextmanager
async def memory_document_store() -> AsyncIterator[DocumentStoreHarness]:
    harness = DocumentStoreHarness(InMemoryDocumentStore(), "memory")
    try:
        yield harness
    finally:
        await harness.store.close()


@contextlib.asynccontextmanager
async def mongo_document_store(url: str) -> AsyncIterator[DocumentStoreHarness]:
    store = await MongoDocumentStore.connect(url, CONTRACT_DATABASE)
    harness = DocumentStoreHarness(store, "mongo")
    try:
        yield harness
    finally:
        try:
            await harness.cleanup()
        finally:
            await store.close()
