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
    # streams: labels, embeddings, replay (docs/streams.md)
    label_window_s: float = Field(1800.0, gt=0, description="attribution window after an impression")
    label_lateness_s: float = Field(
        600.0, ge=0, description="an impression closes once the max event time seen passes its window + this"
    )
    label_buffer_s: float = Field(7200.0, gt=0, description="how long a user's interactions are kept for late joins")
    label_close_max: int = Field(2000, ge=1, le=100_000, description="impressions closed per batch at most")
    vector_half_life_s: float = Field(7 * 86400.0, gt=0, description="decay of incremental user/item vectors")
    replay_batch: int = Field(2000, ge=1, le=100_000)

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list, description="comma-separated; empty = auth off")
    max_batch_events: int = 1000
    max_body_bytes: int = 1024 * 1024

    # serving (POST /recommend, POST /rank)
    serving_budget_ms: float = Field(50.0, gt=0, description="Redis latency budget per request; over it -> degraded")
    serving_quota_ann: int = Field(150, ge=0, le=2000, description="candidates from the user-vector ANN search")
    serving_quota_neighbours: int = Field(100, ge=0, le=2000, description="item-to-item neighbours of recent history")
    serving_quota_trending: int = Field(100, ge=0, le=2000)
    serving_quota_fresh: int = Field(50, ge=0, le=2000)
    serving_max_candidates: int = Field(300, ge=1, le=5000, description="candidates scored per request")
    serving_history_seeds: int = Field(10, ge=0, le=200, description="recent history items used as neighbour seeds")
    serving_mmr_lambda: float = Field(0.7, ge=0.0, le=1.0)
    serving_cold_start_lambda: float = Field(
        0.3, ge=0.0, le=1.0, description="MMR lambda for unknown users and degraded answers: favour category spread"
    )
    serving_max_k: int = Field(100, ge=1, le=100)
    serving_max_rank_items: int = Field(1000, ge=1, le=1000)
    serving_max_body_bytes: int = Field(256 * 1024, ge=1024)
    serving_item_feature_ttl_s: float = Field(
        60.0, ge=0.0, le=600.0, description="item-side features are shared across requests this long (0 = off)"
    )
    serving_registry_dir: Path | None = Field(None, description="model registry root (default <state_dir>/models)")
    serving_ann_dir: Path | None = Field(
        None, description="directory with item_ids.json + item_vectors.npy (+ items.faiss); overrides the model's"
    )
    serving_reload_interval_s: float = Field(2.0, gt=0, description="how often the registry pointer is polled")
    serving_trending_refresh_s: float = Field(2.0, gt=0, description="refresh period of the degraded-mode cache")
    serving_impression_buffer: int = Field(10_000, ge=1, description="impressions held while Kafka is slow/down")
    serving_cursor_secret: SecretStr = Field(
        SecretStr(""), description="HMAC key for paging cursors; empty = random per process (single replica)"
    )
    serving_cursor_max_served: int = Field(1000, ge=10, le=10_000)
    serving_log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    serving_watermark_timeout_s: float = Field(5.0, ge=0.0, le=60.0)

    # offline training (issue 5; docs in offline/train_pipeline.py)
    train_every: str | None = Field(None, description="schedule for `streamrec train`, e.g. 1h, 30m, 1d (None = once)")
    train_min_new_labels: int = Field(0, ge=0, description="also retrain after this many new training examples (0 = off)")
    train_gate_margin: float = Field(0.0, ge=-1.0, le=1.0, description="promote only if ndcg@10 >= current + margin")
    train_runs_dir: Path | None = Field(None, description="run logs, reports, snapshots (default <state_dir>/train_runs)")

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
    def registry_dir(self) -> Path:
        return self.serving_registry_dir or self.state_dir / "models"

    @property
    def runs_dir(self) -> Path:
        return self.train_runs_dir or self.state_dir / "train_runs"

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
