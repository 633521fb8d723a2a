"""The configs streamrec gives the topics it creates: only what is set, as Kafka's string values."""

from __future__ import annotations

from streamrec.kafka import topic_configs
from streamrec.settings import Settings


def test_nothing_set_means_the_brokers_defaults() -> None:
    assert topic_configs(Settings(_env_file=None)) == {}  # type: ignore[call-arg]


def test_retention_and_segment_as_kafka_configs() -> None:
    s = Settings(_env_file=None, topic_retention_ms=259_200_000, topic_segment_ms=3_600_000)  # type: ignore[call-arg]
    assert topic_configs(s) == {"retention.ms": "259200000", "segment.ms": "3600000"}


def test_retention_alone() -> None:
    s = Settings(_env_file=None, topic_retention_ms=86_400_000)  # type: ignore[call-arg]
    assert topic_configs(s) == {"retention.ms": "86400000"}
