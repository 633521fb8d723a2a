"""All configuration, read from the environment (``STREAMREC_*``) or a ``.env`` file.

The embedded default (``streamrec dev up``) and docker-compose use the same
variables; Kafka topic names are defined here and nowhere else.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from typing import Annotated

from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAMREC_", env_file=".env", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="host:port[,host:port] of the Kafka brokers")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="redis://host:port/db of the online store")
    namespace: str = Field("sr", description="Redis key namespace used when no live pointer is set")

    topic_events: str = "events.raw"
    topic_dlq: str = "events.dlq"
    topic_impressions: str = "impressions"
    topic_training: str = "training.examples"
    topic_partitions: int = Field(4, ge=1, le=256)

    worker_id: str = "streamrec-worker"
    worker_batch: int = Field(1000, ge=1, le=100_000)
    worker_batch_ms: int = Field(20, ge=1, le=10_000)
    worker_instance: str = Field(
        "worker-0", min_length=1, description="stable, unique per worker replica (e.g. the pod name)"
    )
    worker_session_timeout_s: float = Field(10.0, ge=6.0, le=300.0)
    dedupe_ttl_s: int = Field(7 * 86400, ge=60)
    trending_half_life_s: float = Field(86400.0, gt=0)

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list, description="comma-separated; empty = auth off")
    max_batch_events: int = 1000
    max_body_bytes: int = 1024 * 1024

    state_dir: Path = Path(".streamrec")
    dev_kafka_port: int = Field(9092, ge=1, le=65535)
    dev_redis_port: int = Field(6379, ge=1, le=65535)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, v: str) -> str:
        for part in v.split(","):
            host, _, port = part.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port], got {v!r}")
        return v.strip()

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"expected redis://host:port/db, got {v!r}")
        return v

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, v: object) -> object:
        if isinstance(v, str):
            return [k.strip() for k in v.split(",") if k.strip()]
        return v

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
