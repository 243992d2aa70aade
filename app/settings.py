"""Process settings, read once from the environment at start."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """An unset URL means the embedded default; a set one that cannot be reached is an error."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=False, extra="ignore")

    database_url: str | None = Field(None, description="PostgreSQL event store; unset: SQLite")
    mongo_url: str | None = Field(None, description="MongoDB read store; unset: in memory")
    mongo_db: str = "orders"
    host: str = "127.0.0.1"
    port: int = 8000
    orders_data_dir: Path = Path(".orders")

    tax_rate: Decimal = Field(Decimal("0.10"), ge=0, lt=1)
    command_max_attempts: int = Field(5, ge=1, description="tries on a version conflict")
    pg_pool_min_size: int = 2
    pg_pool_max_size: int = 10
    connect_timeout_seconds: float = 5.0
    projector_batch_size: int = Field(500, ge=1, le=10_000)
    projector_poll_seconds: float = Field(1.0, gt=0, description="poll when no NOTIFY arrives")
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: human-readable text on a terminal, JSON lines otherwise"
    )

    # The API (`orders api`, `orders dev`).
    migrate_on_start: bool = Field(
        True, description="apply the event store schema at API start (idempotent, locked)"
    )
    consistency_wait_seconds: float = Field(
        2.0, ge=0, le=60, description="how long a consistencyToken read waits for the projector"
    )
    consistency_poll_seconds: float = Field(0.015, gt=0, le=1)
    read_model_version_ttl_seconds: float = Field(
        1.0, ge=0, le=60, description="how long the API caches the active collection versions"
    )
    max_query_depth: int = Field(10, ge=1)
    max_query_tokens: int = Field(2000, ge=100)
    max_query_aliases: int = Field(30, ge=0)
    access_log: bool = False
    max_subscriptions_per_connection: int = Field(
        20, ge=1, description="GraphQL subscriptions one websocket connection may run at once"
    )
