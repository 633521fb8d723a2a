"""Adapter: read the events and training-examples topics into a Parquet snapshot.

Reads every partition from the earliest retained offset up to the topic's end
offset *as of the start of the read* (so the read is bounded even while
producers keep writing), then keeps records whose *event time* lies in the
requested range (Kafka record timestamps are produce times, not event times).
Invalid records are skipped: the worker has already dead-lettered them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from tqdm import tqdm

from offline.snapshot import Snapshot, TimeRange, parse_example, parse_record, write_snapshot
from schemas.events import Event
from streamrec.errors import ServiceUnavailable
from streamrec.settings import Settings

T = TypeVar("T")


async def _read_topic(s: Settings, topic: str, parse: Callable[[bytes], list[T]], progress: bool) -> list[T]:
    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    try:
        try:
            await asyncio.wait_for(c.start(), 15)
            cluster = await c._client.fetch_all_metadata()
        except (KafkaError, asyncio.TimeoutError, OSError) as err:
            raise ServiceUnavailable(f"cannot reach Kafka at {s.kafka_bootstrap}: start it with `streamrec dev up` "
                                     "or set STREAMREC_KAFKA_BOOTSTRAP") from err
        tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]
        if not tps:
            return []
        c.assign(tps)
        ends = await c.end_offsets(tps)
        begins = await c.beginning_offsets(tps)
        for tp in tps:
            c.seek(tp, begins[tp])
        todo = {tp for tp in tps if begins[tp] < ends[tp]}
        out: list[T] = []
        total = sum(ends[tp] - begins[tp] for tp in tps)
        with tqdm(total=total, desc=f"read {topic}", unit="rec", disable=not progress, mininterval=0.5) as bar:
            while todo:
                got = await c.getmany(*todo, timeout_ms=500, max_records=5000)
                for tp, msgs in got.items():
                    for m in msgs:
                        if m.offset >= ends[tp]:
                            todo.discard(tp)
                            break
                        out.extend(parse(m.value or b""))
                        bar.update(1)
                        if m.offset + 1 >= ends[tp]:
                            todo.discard(tp)
        return out
    finally:
        await c.stop()


async def topic_size(s: Settings, topic: str) -> int:
    """Records ever written to ``topic`` (sum of end offsets): the label trigger's counter."""
    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=None, enable_auto_commit=False)
    try:
        await asyncio.wait_for(c.start(), 15)
        cluster = await c._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]
        return int(sum((await c.end_offsets(tps)).values())) if tps else 0
    except (KafkaError, asyncio.TimeoutError, OSError) as err:
        raise ServiceUnavailable(f"cannot reach Kafka at {s.kafka_bootstrap}: start it with `streamrec dev up` "
                                 "or set STREAMREC_KAFKA_BOOTSTRAP") from err
    finally:
        await c.stop()


def snapshot_from_kafka(s: Settings, directory: Path, window: TimeRange, progress: bool = True) -> Snapshot:
    """Events + training examples in ``window`` (event time) -> Parquet under ``directory``."""
    events: list[Event] = asyncio.run(_read_topic(s, s.topic_events, parse_record, progress))
    examples: list[dict[str, Any]] = asyncio.run(_read_topic(s, s.topic_training, parse_example, progress))
    return write_snapshot(directory, events, examples, window, source=f"kafka {s.kafka_bootstrap} "
                          f"topics {s.topic_events},{s.topic_training}")
