"""Letters parked before every follower's letters shared one store are still listed and
retryable after `orders migrate`: the projections' (documents of MongoDB's `dead_letters`
collection) and the saga's (its own `saga_dead_letters` table) move into the one store
beside the event store, keeping their ids; a retry request on a moved projection letter is
acted on by the projection's follower."""

from __future__ import annotations

from datetime import UTC, datetime

from app.backends import migrate
from app.settings import Settings
from log_follower import storage as follower_storage
from log_follower.dead_letters.port import LetterOwner
from read_model.document_store.port import GuardedPut, position_key
from read_model.projections.orders import OrdersProjection
from read_model.service import LetterList
from tests.conftest import service_url
from tests.integration.read_side import build_bus, isolated_stack
from tests.integration.write_side import customer_and_product, one_item_order
from tests.projecting import projection_runner
from write_model.command_context import CommandContext
from write_model.event_types import build_registry

CONTEXT = CommandContext(correlation_id="letters-migration-test")
# The saga's table as it was (sagas' letters before the one store).
OLD_SAGA_TABLE = """
CREATE TABLE saga_dead_letters (
    id text COLLATE "C" PRIMARY KEY, sort_key text COLLATE "C" NOT NULL,
    subscriber text NOT NULL, key text NOT NULL, event_id text NOT NULL,
    stream_id text NOT NULL, stream_version bigint NOT NULL, transaction_id bigint NOT NULL,
    position bigint NOT NULL, event_type text NOT NULL, error text NOT NULL,
    attempts integer NOT NULL, failed_at timestamptz NOT NULL,
    retry_requested boolean NOT NULL DEFAULT false
);
"""


async def test_old_projection_and_saga_letters_are_listed_and_retryable_after_migrate(
    unique: str,
) -> None:
    name = f"letters_migration_{unique}"
    async with isolated_stack(name) as (dsn, events, documents):
        bus = build_bus(events)
        await customer_and_product(bus, CONTEXT, unique, price="5.00", stock=10)
        await bus.dispatch(one_item_order(unique, 1), CONTEXT)
        [created] = [
            e for e in await events.read_stream(f"Order-o-{unique}") if e.type == "OrderCreated"
        ]
        failed_at = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
        # The projection's letter as the projector parked it in MongoDB.
        old_projection_id = f"orders:v1:{created.event_id}"
        await documents.bulk_write(
            [
                GuardedPut(
                    "dead_letters",
                    {
                        "_id": old_projection_id,
                        "_pos": position_key(created.log_position),
                        "subscriber": "orders",
                        "version": 1,
                        "eventId": str(created.event_id),
                        "streamId": created.stream_id,
                        "streamVersion": created.version,
                        "position": str(created.position),
                        "transactionId": str(created.transaction_id),
                        "type": created.type,
                        "error": "ValueError: poison",
                        "attempts": 4,
                        "failedAt": failed_at,
                    },
                )
            ]
        )
        # The saga's letter as the saga parked it in its own table.
        old_saga_id = f"saga:fulfillment:{created.event_id}"
        await events.pool.execute(OLD_SAGA_TABLE)
        await events.pool.execute(
            "INSERT INTO saga_dead_letters VALUES "
            "($1, $2, 'saga:fulfillment', $3, $4, $5, $6, $7, $8, 'OrderSubmitted', "
            "'ValueError: poison', 4, $9, false)",
            old_saga_id,
            position_key(created.log_position),
            f"o-{unique}",
            str(created.event_id),
            created.stream_id,
            created.version,
            created.transaction_id,
            created.position,
            failed_at,
        )

        settings = Settings(database_url=dsn, mongo_url=service_url("MONGO_URL"), mongo_db=name)
        said = await migrate(settings)
        again = await migrate(settings)  # migrating twice moves nothing twice

        stores = follower_storage.postgres_stores(events.pool)
        listed = await LetterList(stores.dead_letters).page(10)
        assert [(d["_id"], d["subscriber"]) for d in listed] == sorted(
            [(old_projection_id, "orders"), (old_saga_id, "saga:fulfillment")]
        )
        assert all(d["failedAt"] == failed_at for d in listed)
        assert "1 projection dead letters moved" in said
        assert "0 projection dead letters moved" in again
        assert await documents.count("dead_letters", {}) == 0

        # Retryable: the request is acted on by the projection's follower.
        assert await LetterList(stores.dead_letters).request_retry(old_projection_id)
        assert await LetterList(stores.dead_letters).request_retry(old_saga_id)
        assert await stores.dead_letters.retry_requested(LetterOwner("saga:fulfillment")) == [
            f"o-{unique}"
        ]
        follower = projection_runner(
            OrdersProjection(),
            events,
            documents,
            build_registry(),
            dead_letters=stores.dead_letters,
        )
        await follower.retry_requested()
        assert await documents.get("orders_v1", f"o-{unique}") is not None
        assert await stores.dead_letters.get(old_projection_id) is None
