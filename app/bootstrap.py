"""The composition root's processes: what runs on a backend (app/backends.py), built from
settings with the factories of app/wiring.py.

On a backend: `command_bus` (command handling), `follower_parts` (what every follower of the
log in the process shares: one reader, the stores), `projector_dependencies` (the projector's
followers), `saga_consumers` (the fulfillment saga's consumers and gateways); the processes
`orders projector` (`run_projector`) and `orders saga`/`participant` (`run_saga_process`).
The API's runtime is in app/api_runtime.py. Everything is built inside a lifespan or a
command's run, never at import.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Sequence

from app.backends import (
    Backend,
    LogBackend,
    follower_statuses_of,
    own_reader,
    shared_backend,
    shared_log_backend,
)
from app.ops_server import ops_server
from app.settings import Settings
from app.wiring import build_command_bus, saga_reactions, simulated_gateways
from log_follower.consumer import Consumer, PerKeyConsumer
from log_follower.decoded import DecodedEvents
from log_follower.follower import Follower, FollowerParts, FollowerSettings
from read_model.projections import ALL_PROJECTIONS
from read_model.projector_process import ProjectorDependencies, run_projection
from read_model.service import ReadModel
from write_model.bus import CommandBus
from write_model.domain.choreography import Participant


def command_bus(settings: Settings, backend: LogBackend) -> CommandBus:
    """The one way in for every command (GraphQL mutations, the CLI, the saga)."""
    return build_command_bus(
        backend.events,
        backend.registry,
        tax_rate=settings.tax_rate,
        max_attempts=settings.command_max_attempts,
        snapshot_every=settings.snapshot_every,
    )


def follower_settings(settings: Settings) -> FollowerSettings:
    return FollowerSettings(
        batch_size=settings.follower_batch_size,
        poll_seconds=settings.follower_poll_seconds,
        heartbeat_seconds=settings.follower_heartbeat_seconds,
        max_attempts=settings.follower_max_attempts,
        backoff_seconds=settings.follower_backoff_seconds,
        concurrency=settings.follower_concurrency,
    )


def follower_parts(settings: Settings, backend: LogBackend) -> FollowerParts:
    """What the followers of the process share: the backend's one reader and stores."""
    return FollowerParts(
        source=backend.source,
        checkpoint=backend.followers.checkpoint,
        dead_letters=backend.followers.dead_letters,
        status=backend.followers.status,
        settings=follower_settings(settings),
    )


def projector_dependencies(settings: Settings, backend: Backend) -> ProjectorDependencies:
    parts = follower_parts(settings, backend)
    return ProjectorDependencies(
        events=backend.events,
        documents=backend.documents,
        registry=backend.registry,
        feed=backend.feed,
        parts=parts,
        # A rebuild reads the log on its own, not through the live followers' reader.
        rebuild_parts=dataclasses.replace(parts, source=own_reader(backend.source)),
        decoded=DecodedEvents(backend.registry),
    )


def saga_consumers(
    settings: Settings, backend: LogBackend, only: Participant | None = None
) -> list[Consumer]:
    """The saga's followers in SAGA_MODE: the orchestrator, or the choreography's three
    participants (`only`: that one, for `orders participant`), each with a checkpoint and
    leader lock of its own; on the simulated gateways (configured by settings), each behind
    its timeout, retries and circuit breaker."""
    from sagas.gateways.resilience import CallPolicy
    from sagas.gateways.simulated import Behaviour, PaymentRules, ShippingRules

    hanging = settings.listed(settings.gateway_hang)

    def behaviour(gateway: str, seed_offset: int) -> Behaviour:
        seed = settings.gateway_seed
        return Behaviour(
            failure_rate=settings.gateway_failure_rate,
            seed=None if seed is None else seed + seed_offset,
            latency_seconds=settings.gateway_latency_seconds,
            hang=gateway in hanging,
        )

    gateways = simulated_gateways(
        backend.ledger,
        payment_rules=PaymentRules(
            decline_above=settings.payment_decline_above,
            decline_customers=settings.listed(settings.payment_decline_customers),
        ),
        shipping_rules=ShippingRules(
            fail_countries=settings.listed(settings.shipping_fail_countries)
        ),
        payment_behaviour=behaviour("payment", 0),
        shipping_behaviour=behaviour("shipping", 1),
        policy=CallPolicy(
            timeout_seconds=settings.gateway_timeout_seconds,
            max_attempts=settings.gateway_max_attempts,
            backoff_seconds=settings.gateway_backoff_seconds,
            breaker_failures=settings.gateway_breaker_failures,
            breaker_cooldown_seconds=settings.gateway_breaker_cooldown_seconds,
        ),
    )
    reactions = saga_reactions(
        settings.saga_mode,
        backend.events,
        backend.registry,
        command_bus(settings, backend),
        gateways,
        only=only,
    )
    return [PerKeyConsumer(reaction, settings.follower_concurrency) for reaction in reactions]


async def run_followers(
    consumers: Sequence[Consumer], parts: FollowerParts, stop: asyncio.Event
) -> None:
    """Followers side by side until `stop`, each leading (or standing by) on its own."""
    async with asyncio.TaskGroup() as tasks:
        for consumer in consumers:
            tasks.create_task(Follower(consumer, parts).run(stop), name=consumer.name)


async def run_saga_process(
    settings: Settings, stop: asyncio.Event, participant: Participant | None = None
) -> None:
    """`orders saga`: lead (or stand by for) the fulfillment saga until `stop` (in
    choreography, its three participants); `orders participant <name>`: that participant
    alone. With the ops endpoints on OPS_PORT when it is set. PostgreSQL and the gateways
    are all it needs (its dead letters live beside its checkpoint), not MongoDB; in
    choreography with KAFKA_BOOTSTRAP_SERVERS set, the participants consume Kafka."""
    from app.kafka_setup import consumes_kafka

    if consumes_kafka(settings):
        return await run_kafka_participants(settings, stop, participant)
    async with (
        shared_log_backend(
            settings, follows_log=True, migrates=settings.migrate_on_start
        ) as backend,
        ops_server(settings, backend, None),
    ):
        consumers = saga_consumers(settings, backend, participant)
        await run_followers(consumers, follower_parts(settings, backend), stop)


async def run_kafka_participants(
    settings: Settings, stop: asyncio.Event, participant: Participant | None = None
) -> None:
    """`orders saga` / `orders participant` when the participants consume Kafka (app/
    consumer_process.py): each a member of its consumer group; the log only for letters'
    events, the stores and the status; the ops port with the groups' checks and metrics."""
    from app.consumer_process import kafka_participants
    from app.kafka_setup import broker_check
    from app.metrics import Metrics

    metrics = Metrics()
    async with shared_log_backend(
        settings, follows_log=False, migrates=settings.migrate_on_start
    ) as backend:
        consumers = saga_consumers(settings, backend, participant)
        async with kafka_participants(
            settings, backend, consumers, follower_settings(settings), metrics.registry
        ) as members:
            broker = broker_check(members.client, os.environ)

            async def checks() -> dict[str, str]:
                return {**(await broker() or {}), **await members.group_check()}

            async with ops_server(
                settings,
                backend,
                None,
                metrics=metrics,
                more_checks=checks,
                more_details=members.readiness_details,
                refresh_metrics=members.refresh_metrics,
            ):
                await members.run(stop)


async def run_projections(deps: ProjectorDependencies, stop: asyncio.Event) -> None:
    async with asyncio.TaskGroup() as tasks:
        for projection in ALL_PROJECTIONS:
            tasks.create_task(run_projection(deps, projection, stop), name=projection.name)


def build_read_model(settings: Settings, backend: Backend) -> ReadModel:
    return ReadModel(
        backend.documents,
        backend.events,
        letters=backend.followers.dead_letters,
        followers=follower_statuses_of(settings, backend),
        wait_seconds=settings.consistency_wait_seconds,
        poll_seconds=settings.consistency_poll_seconds,
        version_ttl_seconds=settings.read_model_version_ttl_seconds,
        stale_seconds=settings.projection_stale_seconds,
        fresh_documents=backend.read_cache.uncached if backend.read_cache is not None else None,
    )


async def run_projector(settings: Settings, stop: asyncio.Event) -> None:
    """`orders projector`: lead (or stand by for) every projection until `stop`, with the
    ops endpoints on OPS_PORT when it is set."""
    async with (
        # Its checkpoints, letters and status are tables beside the event store's.
        shared_backend(settings, follows_log=True, migrates=settings.migrate_on_start) as backend,
        ops_server(settings, backend, build_read_model(settings, backend)),
    ):
        await run_projections(projector_dependencies(settings, backend), stop)


@contextlib.asynccontextmanager
async def projector_tools(settings: Settings) -> AsyncIterator[ProjectorDependencies]:
    """`orders projections status|rebuild`: the projector's dependencies, no loop."""
    async with shared_backend(settings, follows_log=False) as backend:
        yield projector_dependencies(settings, backend)
