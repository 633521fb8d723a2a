"""All configuration, read from the environment (``STREAMREC_*``) or a ``.env`` file.

The embedded default (``streamrec dev up``) and docker-compose use the same
variables; Kafka topic names are defined here and nowhere else.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from typing import Annotated, Literal

from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


MIN_TOPIC_RETENTION_MS = 60_000
"""The shortest ``STREAMREC_TOPIC_RETENTION_MS`` accepted (also ``bench soak --retention-s``'s bound)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAMREC_", env_file=".env", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="host:port[,host:port] of the Kafka brokers")
    kafka_empty_fetch_backoff_ms: int = Field(
        5, ge=0, le=1000,
        description="consumers pause this long after an empty fetch: brokers that answer empty fetches at once "
                    "instead of waiting fetch.max.wait.ms (e.g. noida-db) otherwise make them spin; 0 = off",
    )
    kafka_compression: Literal["zstd", "lz4", "gzip", "none"] = Field(
        "zstd",
        description="compression of the record batches streamrec produces (events, impressions, dead letters, training "
                    "rows): JSON events shrink ~8x, which the broker stores and replicates; zstd (level 3) costs the "
                    "producer ~1/12 of gzip's CPU (aiokafka's gzip is level 9) at about the same size",
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="redis://host:port/db of the online store")
    namespace: str = Field("sr", description="Redis key namespace used when no live pointer is set")

    topic_events: str = Field("events.raw", description="topic of incoming events (apps and POST /events produce here)")
    topic_dlq: str = Field("events.dlq", description="dead-letter topic: refused records with their reason and original bytes")
    topic_impressions: str = Field("impressions", description="impressions logged by serving, joined with later interactions into labels")
    topic_training: str = Field("training.examples", description="training rows (features as served, label, group id) emitted when windows close")
    topic_partitions: int = Field(4, ge=1, le=256, description="partitions of the topics streamrec creates")
    topic_retention_ms: int | None = Field(
        None, ge=MIN_TOPIC_RETENTION_MS,
        description="retention.ms of the topics streamrec creates (unset: the broker's default, 7 days on Apache "
                    "Kafka); `streamrec replay` reaches back no further than this",
    )
    topic_segment_ms: int | None = Field(
        None, ge=1_000,
        description="segment.ms of the topics streamrec creates (unset: the broker's default); retention drops whole "
                    "segments, so keep it well below STREAMREC_TOPIC_RETENTION_MS",
    )

    worker_id: str = Field("streamrec-worker", description="consumer group of the stream workers")
    publish_batch: int = Field(
        500, ge=1, le=1000,
        description="events per batch record sent by streamrec's own producers (POST /events, publish, demo); 1 = one record per event",
    )
    worker_batch: int = Field(1000, ge=1, le=100_000, description="the most records the worker takes from Kafka at once (one consumed batch, acknowledged after it is applied)")
    worker_apply_events: int = Field(
        250, ge=1, le=100_000,
        description="events per worker plan + atomic apply (one Redis Lua call; batch records are cut to fit): "
                    "bounds how long one apply holds single-threaded Redis",
    )
    worker_overlap: bool = Field(
        True, description="plan the next part of a batch while Redis applies the current one (same result as "
                          "planning after it; the applies stay in order); false = plan, apply, plan, apply",
    )
    worker_prefetch_records: int = Field(
        512, ge=1, le=100_000,
        description="Kafka records the worker buffers ahead of processing; fetching pauses when full, so memory "
                    "stays flat however large the backlog (with batch records each holds up to 500 events)",
    )
    worker_batch_ms: int = Field(
        5, ge=1, le=10_000,
        description="longest wait to fill a batch, in milliseconds: the worker waits this long before every batch "
                    "(less only when worker_batch records arrive first), so it adds straight to freshness",
    )
    worker_gc_young: int = Field(
        10_000, ge=0, le=10_000_000,
        description="allocations between collections of the worker's young generation; the objects alive once "
                    "it starts are frozen out of collection (streamrec.heap.tune_gc); 0 = Python's defaults",
    )
    worker_instance: str = Field(
        "worker-0", min_length=1, description="stable, unique per worker replica (e.g. the pod name)"
    )
    worker_session_timeout_s: float = Field(10.0, ge=6.0, le=300.0, description="consumer session timeout; a dead worker is evicted after this")
    dedupe_ttl_s: int = Field(7 * 86400, ge=60, description=(
        "how long an event id is remembered for deduplication; each id is one Redis key of ~100 bytes, "
        "so memory is about rate x TTL x 100 B (2,000 events/s for 7 days: ~120 GB): size it to how late "
        "a producer may retry, not longer"))
    trending_half_life_s: float = Field(86400.0, gt=0, description="half-life of the trending score")
    # streams: labels, embeddings, replay (docs/streams.md)
    label_window_s: float = Field(1800.0, gt=0, description="attribution window after an impression")
    label_lateness_s: float = Field(
        600.0, ge=0, description="an impression closes once the max event time seen passes its window + this"
    )
    label_buffer_s: float = Field(7200.0, gt=0, description="how long a user's interactions are kept for late joins")
    label_buffer_max_s: float = Field(
        86400.0, gt=0, description="how long a lagging impressions topic may hold interactions back (>= the buffer)"
    )
    label_close_max: int = Field(2000, ge=1, le=100_000, description="impressions closed per batch at most")
    vector_half_life_s: float = Field(7 * 86400.0, gt=0, description="decay of incremental user/item vectors")
    replay_batch: int = Field(2000, ge=1, le=100_000, description="records per batch during `streamrec replay`")

    api_host: str = Field("127.0.0.1", description="address the API binds to")
    api_port: int = Field(8000, ge=1, le=65535, description="port the API binds to")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list, description="comma-separated; empty = auth off")
    max_batch_events: int = Field(1000, description="most events in one POST /events")
    max_body_bytes: int = Field(1024 * 1024, description="largest POST /events body")

    # serving (POST /recommend, POST /rank)
    serving_budget_ms: float = Field(50.0, gt=0, description="Redis latency budget per request; over it -> degraded")
    serving_down_cooldown_s: float = Field(
        1.0, gt=0, le=60, description="degraded mode lasts this long after Redis failed, then one request probes it again")
    serving_slow_cooldown_s: float = Field(
        0.2, gt=0, le=60,
        description="degraded mode lasts this long after 3 round trips in a row over serving_budget_ms, then one request "
                    "probes Redis again")
    serving_quota_ann: int = Field(150, ge=0, le=2000, description="candidates from the user-vector ANN search")
    serving_quota_neighbours: int = Field(100, ge=0, le=2000, description="item-to-item neighbours of recent history")
    serving_quota_trending: int = Field(100, ge=0, le=2000, description="candidates from trending items")
    serving_quota_fresh: int = Field(50, ge=0, le=2000, description="candidates from fresh items")
    serving_max_candidates: int = Field(300, ge=1, le=5000, description="candidates scored per request")
    serving_history_seeds: int = Field(10, ge=0, le=200, description="recent history items used as neighbour seeds")
    serving_clock: Literal["wall", "stream"] = Field(
        "wall", description="time features are computed at: wall clock, or the newest applied event time (replays)")
    serving_mmr_lambda: float = Field(0.7, ge=0.0, le=1.0, description="default MMR lambda (1 = pure relevance, 0 = pure diversity)")
    serving_cold_start_lambda: float = Field(
        0.3, ge=0.0, le=1.0, description="MMR lambda for unknown users and degraded answers: favour category spread"
    )
    serving_max_k: int = Field(100, ge=1, le=100, description="largest k a client may ask for")
    serving_max_rank_items: int = Field(1000, ge=1, le=1000, description="most item ids in one POST /rank")
    serving_max_body_bytes: int = Field(256 * 1024, ge=1024, description="largest /recommend or /rank body")
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
    serving_cursor_max_served: int = Field(1000, ge=10, le=10_000, description="most items a paging cursor remembers")
    serving_log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="log level of the API's JSON logs")
    serving_watermark_timeout_s: float = Field(5.0, ge=0.0, le=60.0, description="longest wait for min_watermark before answering with the lag")

    # offline training (docs in offline/train_pipeline.py and docs/training.md)
    train_every: str | None = Field(None, description="schedule for `streamrec train`, e.g. 1h, 30m, 1d (None = once)")
    train_min_new_labels: int = Field(0, ge=0, description="also retrain after this many new labelled impressions: records on the training topic, one per impression (0 = off)")
    train_gate_margin: float = Field(0.0, ge=-1.0, le=1.0, description="promote only if ndcg@10 >= current + margin")
    train_runs_dir: Path | None = Field(None, description="run logs, reports, snapshots (default <state_dir>/train_runs)")

    state_dir: Path = Field(Path(".streamrec"), description="local state of the embedded runtime, registry and training runs")
    dev_kafka_port: int = Field(9092, ge=1, le=65535, description="broker port of `streamrec dev up`")
    dev_redis_port: int = Field(6379, ge=1, le=65535, description="Redis port of `streamrec dev up`")

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

    @model_validator(mode="after")
    def _label_buffers(self) -> "Settings":
        if self.label_buffer_s <= self.label_window_s + self.label_lateness_s:
            raise ValueError("STREAMREC_LABEL_BUFFER_S must exceed STREAMREC_LABEL_WINDOW_S + STREAMREC_LABEL_LATENESS_S")
        if self.label_buffer_max_s < self.label_buffer_s:
            raise ValueError("STREAMREC_LABEL_BUFFER_MAX_S must be at least STREAMREC_LABEL_BUFFER_S")
        return self

    @model_validator(mode="after")
    def _topic_retention(self) -> "Settings":
        if self.topic_retention_ms is not None and self.topic_segment_ms is not None \
                and self.topic_segment_ms > self.topic_retention_ms:
            raise ValueError("STREAMREC_TOPIC_SEGMENT_MS must not exceed STREAMREC_TOPIC_RETENTION_MS "
                             "(retention drops whole segments)")
        return self

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
