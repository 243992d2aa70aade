"""Process settings, read once from the environment at start."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

_URL_SCHEMES = {
    "database_url": ("postgresql://", "postgres://"),
    "mongo_url": ("mongodb://", "mongodb+srv://"),
    "jwt_jwks_url": ("https://", "http://"),
}


@dataclass(frozen=True, slots=True)
class Renamed:
    """A setting renamed: `old` (an environment name) is still read, and deprecated."""

    old: str
    new: str  # the field, e.g. "follower_batch_size" (FOLLOWER_BATCH_SIZE)


RENAMED: tuple[Renamed, ...] = (
    Renamed("PROJECTOR_BATCH_SIZE", "follower_batch_size"),
    Renamed("PROJECTOR_POLL_SECONDS", "follower_poll_seconds"),
    Renamed("PROJECTOR_HEARTBEAT_SECONDS", "follower_heartbeat_seconds"),
    Renamed("SAGA_MAX_ATTEMPTS", "follower_max_attempts"),
    Renamed("SAGA_BACKOFF_SECONDS", "follower_backoff_seconds"),
    Renamed("SAGA_CONCURRENCY", "follower_concurrency"),
    Renamed("MAX_WEBSOCKETS_PER_PRINCIPAL", "max_streams_per_principal"),
)


def renamed_settings(
    data: Any,
    renamed: tuple[Renamed, ...],
    fields: Mapping[str, FieldInfo],
    environ: Mapping[str, str],
) -> Any:
    """The settings' input with each deprecated name's value under its new name. The old
    name comes from the environment or a keyword (any case); set together with the new one
    to a different value, it is a settings error naming both, never a silent choice."""
    if not isinstance(data, dict):
        return data
    environment = {name.upper(): value for name, value in environ.items()}
    given = {str(key).upper(): value for key, value in data.items()}
    for rename in renamed:
        old = given.get(rename.old, environment.get(rename.old))
        if old is None:
            continue
        new_name = rename.new.upper()
        new = data.get(rename.new, given.get(new_name))
        if new is None:
            log.warning("%s is deprecated: set %s instead", rename.old, new_name)
            data = {**data, rename.new: old}
            continue
        if _value(fields[rename.new], old) != _value(fields[rename.new], new):
            raise ValueError(
                f"{rename.old} (deprecated, now {new_name}) is {old!r} but {new_name} is "
                f"{new!r}: set only {new_name}"
            )
    return data


def _value(field: FieldInfo, raw: object) -> object:
    """`raw` as the field's type, so "500" and 500 are one value; as given if it is not
    one (the field's own validation reports that)."""
    if field.annotation is None:
        return raw
    try:
        return TypeAdapter(field.annotation).validate_python(raw, strict=False)
    except ValidationError:
        return raw


_SWITCHES = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}


class Settings(BaseSettings):
    """An unset URL means the embedded default; a set one that cannot be reached is an error."""

    model_config = SettingsConfigDict(
        frozen=True, case_sensitive=False, extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(None, description="PostgreSQL event store; unset: SQLite")
    mongo_url: str | None = Field(None, description="MongoDB read store; unset: in memory")
    mongo_db: str = Field("orders", description="MongoDB database of the read documents")
    host: str = Field("127.0.0.1", description="listen address of `orders api` / `orders dev`")
    port: int = Field(
        8000, ge=0, le=65535, description="listen port of `orders api` / `orders dev`"
    )
    orders_data_dir: Path = Field(
        Path(".orders"), description="where the embedded SQLite event store lives (events.db)"
    )

    tax_rate: Decimal = Field(
        Decimal("0.10"), ge=0, lt=1, description="tax on new orders, a fraction in [0, 1)"
    )
    command_max_attempts: int = Field(
        10,
        ge=1,
        description="tries of a command without expectedVersion when concurrent writes to "
        "its stream conflict (with jittered backoff between them)",
    )
    snapshot_every: int = Field(
        100,
        ge=0,
        description="events between snapshots of a product, order or customer stream, "
        "which commands load from (0: save none)",
    )
    pg_pool_min_size: int = Field(2, description="PostgreSQL connections kept open")
    pg_pool_max_size: int = Field(10, description="PostgreSQL connections at most")
    connect_timeout_seconds: float = Field(5.0, gt=0, description="one connection attempt")
    startup_timeout_seconds: float = Field(
        30.0,
        ge=0,
        description="how long a starting process retries a set but unreachable database "
        "before it exits with status 2",
    )
    # Every follower of the log (the projections, the saga or its participants, the relay).
    follower_batch_size: int = Field(
        500, ge=1, le=10_000, description="events a follower of the log reads per batch"
    )
    follower_poll_seconds: float = Field(
        1.0, gt=0, description="how often a follower looks at the log when no append wakes it"
    )
    follower_heartbeat_seconds: float = Field(
        2.0, gt=0, description="how often a leading follower records that it is alive"
    )
    follower_max_attempts: int = Field(
        4,
        ge=1,
        description="tries of a key whose events keep failing (a bug, a poison event, a "
        "refused compensation; not an outage) before they are parked as dead letters",
    )
    follower_backoff_seconds: float = Field(
        0.1, ge=0, description="first wait between those tries; doubled each time"
    )
    follower_concurrency: int = Field(
        32, ge=1, le=1000, description="keys (sagas) one follower handles at once"
    )
    projection_stale_seconds: float = Field(
        10.0,
        gt=0,
        description="a projection whose leader has not moved or beaten for this long while "
        "events wait is shown STOPPED (and the API is not ready)",
    )
    ops_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="serve /healthz, /readyz with its checks and /metrics here (`orders "
        "projector`, `orders saga`, and the API, whose own port then has no /metrics and a "
        "/readyz that says only ready or not)",
    )
    ops_host: str | None = Field(
        None, description="listen address of OPS_PORT; unset: the process's HOST (or --host)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR"
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: human-readable text on a terminal, JSON lines otherwise"
    )

    # The API (`orders api`, `orders dev`).
    migrate_on_start: bool = Field(
        True,
        description="apply the event store schema (with the followers' and the saga's tables) "
        "when the API, projector or saga process starts (idempotent, locked)",
    )
    consistency_wait_seconds: float = Field(
        2.0, ge=0, le=60, description="how long a consistencyToken read waits for the projector"
    )
    consistency_poll_seconds: float = Field(
        0.015, gt=0, le=1, description="how often such a read checks the projector again"
    )
    read_model_version_ttl_seconds: float = Field(
        1.0, ge=0, le=60, description="how long the API caches the active collection versions"
    )
    read_cache_documents: int = Field(
        10_000,
        ge=0,
        description="how many read documents `orders api` keeps in memory for reads by id, "
        "dropped as the change feed announces their writes; 0: none",
    )
    introspection: Literal["on", "off", "staff"] = Field(
        "staff",
        description="who may ask __schema and __type (GraphiQL's docs and completion do): "
        "`on` everyone, `off` nobody, `staff` staff tokens only where authentication is on "
        "(everyone where the API is open); `true` / `false` mean on / off; always on in "
        "`orders dev`",
    )
    max_query_depth: int = Field(10, ge=1, description="deepest selection a query may nest")
    max_query_tokens: int = Field(2000, ge=100, description="longest query document, in tokens")
    max_query_aliases: int = Field(30, ge=0, description="aliases one query may use")
    max_query_cost: int = Field(
        10_000,
        ge=100,
        description="estimated cost a query may have: each field 1, each page 100 and each of its "
        "elements 30, times the page sizes they are nested in (the default: about 50 ms of CPU "
        "at most)",
    )
    max_request_bytes: int = Field(
        262_144, ge=1024, description="largest HTTP request body; a larger one is a 413"
    )
    max_query_string_bytes: int = Field(
        16_384, ge=256, description="longest query string (a GET query); a longer one is a 414"
    )
    max_websocket_message_bytes: int = Field(
        262_144, ge=1024, description="largest websocket message; a larger one closes the socket"
    )
    access_log: bool = Field(False, description="log every HTTP request (uvicorn's access log)")
    connection_init_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="a websocket that sends no connection_init for this long is closed (4408)",
    )
    max_subscriptions_per_connection: int = Field(
        20, ge=1, description="GraphQL subscriptions one websocket connection may run at once"
    )

    # Authentication and access (app/auth.py). No key set: the API is open to everyone.
    jwt_secret: str | None = Field(
        None,
        min_length=32,  # RFC 7518: an HS256 key at least as long as the hash
        description="HS256 key (32 characters or more) that signs bearer tokens; set: "
        "authentication is on",
    )
    jwt_public_key: str | None = Field(
        None, description="PEM public key (RS256 or ES256) that verifies bearer tokens"
    )
    jwt_jwks_url: str | None = Field(
        None, description="JWKS URL whose keys (RS256 or ES256) verify bearer tokens"
    )
    jwt_issuer: str | None = Field(None, description="required `iss` of tokens, when set")
    jwt_audience: str | None = Field(None, description="required `aud` of tokens, when set")
    jwt_leeway_seconds: float = Field(
        30.0, ge=0, le=600, description="clock skew allowed on a token's `exp` and `nbf`"
    )
    jwt_roles_claim: str = Field(
        "roles", description="the token claim (a list or a string) that holds its roles"
    )
    jwt_staff_role: str = Field(
        "staff", description="the role that makes a token's subject staff, not a customer"
    )
    mutation_rate_limit: int | None = Field(
        None,
        ge=0,
        description="mutations a minute per principal (per client address when open), per "
        "API process, answered 429 beyond it; unset or 0: no limit (`orders dev`: never)",
    )
    max_streams_per_principal: int = Field(
        10,
        ge=1,
        # Renamed from MAX_WEBSOCKETS_PER_PRINCIPAL when HTTP streams (SSE, multipart) began
        # to count too (RENAMED above).
        description="websocket connections and HTTP subscription streams (SSE, multipart) one "
        "principal may hold open at once, per process (counted where authentication is on); "
        "`MAX_WEBSOCKETS_PER_PRINCIPAL`, its old name, is still read (deprecated)",
    )
    stream_heartbeat_seconds: float = Field(
        15.0,
        gt=0,
        le=300,
        description="how often an idle HTTP subscription stream (SSE, multipart) sends a "
        "keep-alive, so proxies do not cut it",
    )
    ops_token: str | None = Field(
        None,
        min_length=16,
        description="bearer token for /metrics and /readyz's checks on the API port where "
        "OPS_PORT is unset (a staff token also works); set: /metrics is no longer public",
    )
    cors_allowed_origins: str | None = Field(
        None,
        description="comma-separated origins allowed to call from a browser (HTTP and "
        "websockets), or `*`; unset: same origin only (`orders dev`: any)",
    )
    # The fulfillment saga (`orders saga`, in-process in `orders dev`) and its gateways.
    saga_mode: Literal["orchestration", "choreography"] = Field(
        "orchestration",
        description="how the fulfillment saga runs: `orchestration` (one orchestrator drives "
        "each order's steps) or `choreography` (inventory, payment and shipping participants "
        "react to each other's events; `orders participant` runs one alone)",
    )
    payment_decline_above: Decimal | None = Field(
        None, description="simulated payments: decline charges above this amount"
    )
    payment_decline_customers: str = Field(
        "demo-declined",  # the demo customer `orders seed` adds to show a rejection
        description="simulated payments: decline these customer ids (comma-separated)",
    )
    shipping_fail_countries: str = Field(
        "", description="simulated shipping: refuse these country codes (comma-separated)"
    )
    gateway_failure_rate: float = Field(
        0.0, ge=0, le=1, description="simulated gateways: share of calls failing transiently"
    )
    gateway_seed: int | None = Field(
        None, description="simulated gateways: seed of those failures (unset: random)"
    )
    gateway_latency_seconds: float = Field(
        0.0, ge=0, description="simulated gateways: added to every call"
    )
    gateway_hang: str = Field(
        "", description="simulated gateways that never answer: payment, shipping (comma-separated)"
    )
    gateway_timeout_seconds: float = Field(5.0, gt=0, description="one gateway call at most")
    gateway_max_attempts: int = Field(
        3, ge=1, description="tries of a gateway call failing transiently or timing out"
    )
    gateway_backoff_seconds: float = Field(
        0.05, ge=0, description="first wait before a retry; doubled each time, with jitter"
    )
    gateway_breaker_failures: int = Field(
        5, ge=1, description="failed gateway calls in a row that open its circuit breaker"
    )
    gateway_breaker_cooldown_seconds: float = Field(
        10.0, gt=0, description="how long an open breaker fails calls fast before a trial"
    )

    kafka_bootstrap_servers: str | None = Field(
        None,
        description="Kafka brokers (host:port, comma-separated) the relay publishes the log to; "
        "unset: no relay, nothing needs Kafka",
    )
    kafka_topic_prefix: str = Field(
        "", description="put before every topic name: <prefix><category>-events"
    )
    kafka_content_mode: Literal["binary", "structured"] = Field(
        "binary",
        description="CloudEvents Kafka binding mode: binary (data as value, ce_* headers) or "
        "structured (the whole CloudEvent as JSON)",
    )
    kafka_source: str = Field("/orders", description="the CloudEvents `source` of every event")
    kafka_topic_partitions: int = Field(
        6, ge=1, description="partitions of each topic the relay creates when missing"
    )
    kafka_replication_factor: int | None = Field(
        None,
        ge=1,
        description="replication factor of each topic the relay creates (unset: "
        "the broker's default.replication.factor)",
    )
    kafka_transactional_id: str = Field(
        "orders-relay",
        description="the relay's transactional.id: one per log, stable across restarts (a "
        "second relay with it is fenced by the broker)",
    )
    kafka_transaction_max_records: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="records per Kafka transaction at most (N): the relay's follower reads "
        "batches of this size, each one transaction",
    )
    kafka_transaction_linger_ms: float = Field(
        20.0,
        ge=0,
        le=10_000,
        description="how long a pending event waits at most before the relay's Kafka "
        "transaction holding it begins (T): a short transaction begins T after the one before "
        "it, with every event appended meanwhile, or at once after a quiet spell; a full one "
        "at once",
    )
    kafka_timeout_seconds: float = Field(
        30.0, gt=0, description="a transaction's commit or abort waits this long per try"
    )
    kafka_consumer_group: str = Field(
        "{prefix}orders-{participant}",
        description="with KAFKA_BOOTSTRAP_SERVERS and SAGA_MODE=choreography, each participant "
        "consumes its triggers' topics in this consumer group ({prefix}: KAFKA_TOPIC_PREFIX, "
        "{participant}: inventory, payment or shipping); its letters and status go by it",
    )
    kafka_dead_letter_topic: str = Field(
        "dead-letter-queue",
        description="the participants' parked records are published here (after "
        "KAFKA_TOPIC_PREFIX), with Spring Kafka's kafka_dlt-* headers",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_settings(cls, data: Any) -> Any:
        return renamed_settings(data, RENAMED, cls.model_fields, os.environ)

    @field_validator("introspection", mode="before")
    @classmethod
    def _introspection_as_a_switch(cls, value: object) -> object:
        # The setting was a boolean before it had the `staff` policy.
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str):
            lowered = value.strip().lower()
            return _SWITCHES.get(lowered, lowered)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_in_any_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("kafka_consumer_group")
    @classmethod
    def _group_template(cls, value: str) -> str:
        try:
            named = value.format(prefix="", participant="payment")
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"may use only {{prefix}} and {{participant}} ({type(error).__name__}: {error})"
            ) from None
        if value.format(prefix="", participant="inventory") == named:
            raise ValueError("should hold {participant}: each participant needs a group of its own")
        return value

    @field_validator("database_url", "mongo_url", "jwt_jwks_url")
    @classmethod
    def _url_scheme(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A wrong scheme is refused at start, not retried for STARTUP_TIMEOUT_SECONDS.
        schemes = _URL_SCHEMES[info.field_name or ""]
        if value and value.split("://", 1)[0].lower() + "://" not in schemes:
            raise ValueError(f"should be a URL starting with {' or '.join(schemes)}")
        return value

    def listed(self, value: str) -> frozenset[str]:
        """A comma-separated setting as a set (blanks dropped)."""
        return frozenset(part.strip() for part in value.split(",") if part.strip())
