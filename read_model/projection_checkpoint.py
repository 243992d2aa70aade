"""The projector's checkpoint adapter: the follower's place kept beside the projection's
documents (the document store's checkpoints), with what `projections` shows: the collection
version it writes, its state, and a rebuild's progress. Passes the Checkpoint conformance
suite (tests/contracts/test_checkpoint.py) like the adapters in log_follower/checkpoint/."""

from __future__ import annotations

from log_follower.checkpoint.port import Progress
from read_model.document_store.port import (
    Checkpoint,
    DocumentStore,
    ProjectionState,
    RebuildStatus,
)
from write_model.envelope import LogPosition


class ProjectionCheckpoint:
    """`version`: the collections it writes; `rebuild`: a rebuild's status, kept on every
    save of the rebuild's own checkpoint (`<name>:rebuild`), whose state is REBUILDING."""

    def __init__(
        self, documents: DocumentStore, version: int = 1, rebuild: RebuildStatus | None = None
    ) -> None:
        self._documents = documents
        self.version = version
        self.rebuild = rebuild

    async def load(self, follower: str) -> LogPosition | None:
        checkpoint = await self._documents.load_checkpoint(follower)
        return None if checkpoint is None else checkpoint.position

    async def save(self, follower: str, progress: Progress) -> None:
        rebuilding = self.rebuild is not None and progress.state.value != "FAILED"
        await self._documents.save_checkpoint(
            Checkpoint(
                follower,
                progress.position,
                version=self.version,
                state=ProjectionState.REBUILDING if rebuilding else ProjectionState(progress.state),
                rebuild=self.rebuild,
                last_error=progress.last_error,
            )
        )
