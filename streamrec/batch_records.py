"""Producer side of batch records: events grouped by the partition their key maps to.

A Kafka record costs the Faust worker ~200 us of CPU on the development machines
whatever it holds, so streamrec's own producers (``POST /events``, ``streamrec
publish``, the demo, the benchmarks) send *batch records* (``schemas.codec.encode_batch``):
up to ``size`` events that share a partition, in their order.  Events are routed
exactly as single records would be (Kafka's default partitioner on ``event_key``),
so each user's events stay in one partition and in order.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from schemas.codec import MAX_BATCH_EVENTS, MAX_RECORD_BYTES, encode
from schemas.events import Event

_PARTITIONER = DefaultPartitioner()
T = TypeVar("T")


def event_key(event: Event) -> bytes:
    uid = getattr(event, "user_id", None)
    return str(uid if uid is not None else getattr(event, "item_id", event.event_id)).encode()


def partition_of(event: Event, partitions: list[int]) -> int:
    return int(_PARTITIONER(event_key(event), partitions, partitions))


def group(events: Iterable[Event], partitions: list[int], size: int) -> list[tuple[int, bytes, bytes, int]]:
    """(partition, key, record value, events in it) per record: runs of at most ``size``
    events and ``MAX_RECORD_BYTES`` bytes, each partition's events in their original order.
    A run of one event is sent as a plain record."""
    size = max(1, min(size, MAX_BATCH_EVENTS))
    return [(p, key, value, len(members))
            for p, key, value, members in runs(events, event_key, encode, partitions, size)]


def runs(items: Iterable[T], key_of: Callable[[T], bytes], encode_of: Callable[[T], bytes], partitions: list[int],
         size: int, max_bytes: int = MAX_RECORD_BYTES) -> list[tuple[int, bytes, bytes, list[T]]]:
    """(partition, key, record value, items in it) per record, for any item with a key and a wire form:
    each item goes to the partition its key maps to (Kafka's default partitioner, as a keyed single
    record would), and each partition's items are joined, in their order, into batch records of at most
    ``size`` items and ``max_bytes`` bytes; a run of one is a plain record."""
    open_runs: dict[int, tuple[bytes, list[bytes], list[T], int]] = {}
    out: list[tuple[int, bytes, bytes, list[T]]] = []

    def close(p: int) -> None:
        key, vals, members, _ = open_runs.pop(p)
        out.append((p, key, vals[0] if len(vals) == 1 else b"[" + b",".join(vals) + b"]", members))

    for item in items:
        key = key_of(item)
        p = int(_PARTITIONER(key, partitions, partitions))
        raw = encode_of(item)
        run = open_runs.get(p)
        if run is not None and (len(run[1]) >= size or run[3] + len(raw) + 2 > max_bytes):
            close(p)
            run = None
        if run is None:
            open_runs[p] = (key, [raw], [item], len(raw) + 1)
        else:
            run[1].append(raw)
            run[2].append(item)
            open_runs[p] = (run[0], run[1], run[2], run[3] + len(raw) + 1)
    for p in list(open_runs):
        close(p)
    return out


async def send_batches(producer: AIOKafkaProducer, topic: str, events: Iterable[Event],
                       size: int) -> list[asyncio.Future[Any]]:
    """Send ``events`` as batch records; returns one send future per record."""
    return [fut for fut, _ in await send_runs(producer, topic, events, size)]


async def send_runs(producer: AIOKafkaProducer, topic: str, events: Iterable[Event],
                    size: int) -> list[tuple[asyncio.Future[Any], list[Event]]]:
    """``send_batches``, with the events each record holds (for a ledger of what went where)."""
    partitions = sorted(await producer.partitions_for(topic))
    size = max(1, min(size, MAX_BATCH_EVENTS))
    return [(await producer.send(topic, value=value, key=key, partition=p), members)
            for p, key, value, members in runs(events, event_key, encode, partitions, size)]
