"""Topics streamrec creates carry STREAMREC_TOPIC_RETENTION_MS / _SEGMENT_MS; unset, the broker's defaults."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streamrec.kafka import all_topics, ensure_topics
from streamrec.settings import Settings
from tests.integration.conftest import run

pytestmark = pytest.mark.integration


async def _configs(s: Settings, topics: list[str]) -> dict[str, dict[str, str]]:
    adm = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await adm.start()
    try:
        got = await adm.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    finally:
        await adm.close()
    out: dict[str, dict[str, str]] = {}
    for response in got:
        for _code, _msg, _type, name, entries in response.resources:
            out[name] = {e[0]: e[1] for e in entries}
    return out


def test_created_topics_carry_retention_and_segment(settings: Settings) -> None:
    s = settings.model_copy(update={"topic_retention_ms": 180_000, "topic_segment_ms": 30_000})
    created = run(ensure_topics(s))
    assert sorted(created) == sorted(all_topics(s))
    conf = run(_configs(s, created))
    for t in created:
        assert conf[t].get("retention.ms") == "180000", (t, conf[t])
        assert conf[t].get("segment.ms") == "30000", (t, conf[t])


def test_unset_retention_leaves_the_broker_default(settings: Settings) -> None:
    created = run(ensure_topics(settings))
    assert sorted(created) == sorted(all_topics(settings))
    control = f"{settings.topic_events}.control"  # created with no configs at all: the broker's defaults
    run(_create_plain(settings, control))
    conf = run(_configs(settings, created + [control]))
    for t in created:
        for name in ("retention.ms", "segment.ms"):
            assert conf[t].get(name) == conf[control].get(name), (t, name, conf[t], conf[control])


async def _create_plain(s: Settings, topic: str) -> None:
    adm = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await adm.start()
    try:
        await adm.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await adm.close()

