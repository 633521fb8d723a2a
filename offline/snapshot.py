"""Parquet snapshots of the event log and of the training examples (pyarrow, no pickle).

A snapshot is a directory::

    events.parquet     one row per distinct event (first occurrence of an event_id wins),
                       sorted by event time: event_id, type, ts (epoch s), user_id, item_id,
                       value (rating / dwell_ms / NaN), raw (the event's JSON)
    examples.parquet   one row per impressed item from the training-examples topic:
                       group_id, user_id, item_id, position, ts, grade, feature_names (JSON), features (JSON)
    snapshot.json      data range, counts, and where it came from

The data range ``[start, end)`` is in *event* time; rows outside it are dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.events import EVENT_ADAPTER, Event
from streams.training_records import training_rows

EVENTS_FILE = "events.parquet"
EXAMPLES_FILE = "examples.parquet"
META_FILE = "snapshot.json"

EVENT_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("type", pa.string()), ("ts", pa.float64()), ("user_id", pa.string()),
    ("item_id", pa.string()), ("value", pa.float64()), ("raw", pa.binary()),
])
EXAMPLE_SCHEMA = pa.schema([
    ("group_id", pa.string()), ("user_id", pa.string()), ("item_id", pa.string()), ("position", pa.int32()),
    ("ts", pa.float64()), ("grade", pa.int32()), ("feature_names", pa.string()), ("features", pa.string()),
])


@dataclass(frozen=True)
class TimeRange:
    start: datetime | None = None  # inclusive; None = from the beginning
    end: datetime | None = None  # exclusive; None = up to now

    def contains(self, ts: float) -> bool:
        return (self.start is None or ts >= self.start.timestamp()) and (self.end is None or ts < self.end.timestamp())


@dataclass(frozen=True)
class Snapshot:
    directory: Path
    n_events: int
    n_examples: int
    data_start: datetime
    data_end: datetime

    @property
    def events_path(self) -> Path:
        return self.directory / EVENTS_FILE

    @property
    def examples_path(self) -> Path:
        return self.directory / EXAMPLES_FILE


def _value(e: Event) -> float:
    for attr in ("rating", "dwell_ms"):
        v = getattr(e, attr, None)
        if v is not None:
            return float(v)
    return float("nan")


def event_row(e: Event) -> dict[str, Any]:
    return {
        "event_id": e.event_id, "type": e.type, "ts": e.ts.timestamp(), "user_id": getattr(e, "user_id", None),
        "item_id": getattr(e, "item_id", None), "value": _value(e), "raw": e.model_dump_json().encode(),
    }


def example_row(obj: Mapping[str, Any]) -> dict[str, Any]:
    ts = datetime.fromisoformat(str(obj["impression_ts"])).timestamp()
    return {
        "group_id": str(obj["group_id"]), "user_id": str(obj["user_id"]), "item_id": str(obj["item_id"]),
        "position": int(obj.get("position", 0)), "ts": ts, "grade": int(obj["grade"]),
        "feature_names": json.dumps(obj.get("feature_names")), "features": json.dumps(obj.get("features")),
    }


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def write_snapshot(
    directory: Path, events: Iterable[Event], examples: Iterable[Mapping[str, Any]], window: TimeRange,
    source: str, chunk: int = 200_000,
) -> Snapshot:
    """Deduplicate, filter to ``window``, sort by time and write the Parquet files."""
    directory.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for e in events:
        if e.event_id in seen or not window.contains(e.ts.timestamp()):
            continue
        seen.add(e.event_id)
        rows.append(event_row(e))
    rows.sort(key=lambda r: (r["ts"], r["event_id"]))
    writer = pq.ParquetWriter(directory / EVENTS_FILE, EVENT_SCHEMA)
    for start in range(0, max(len(rows), 1), chunk):
        writer.write_table(pa.Table.from_pylist(rows[start : start + chunk], schema=EVENT_SCHEMA))
    writer.close()
    ex_seen: set[tuple[str, str]] = set()
    ex_rows = []
    for obj in examples:
        row = example_row(obj)
        key = (row["group_id"], row["item_id"])
        if key not in ex_seen and window.contains(row["ts"]):
            ex_seen.add(key)
            ex_rows.append(row)
    pq.write_table(pa.Table.from_pylist(ex_rows, schema=EXAMPLE_SCHEMA), directory / EXAMPLES_FILE)
    times = [r["ts"] for r in rows if r["type"] not in ("item", "user")] or [r["ts"] for r in rows] or [0.0]
    snap = Snapshot(directory, len(rows), len(ex_rows), _dt(min(times)), _dt(max(times)))
    meta = {"source": source, "n_events": snap.n_events, "n_examples": snap.n_examples,
            "data_start": snap.data_start.isoformat(), "data_end": snap.data_end.isoformat(),
            "window": [window.start.isoformat() if window.start else None, window.end.isoformat() if window.end else None]}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2))
    return snap


def open_snapshot(directory: Path) -> Snapshot:
    meta = json.loads((directory / META_FILE).read_text())
    return Snapshot(directory, int(meta["n_events"]), int(meta["n_examples"]),
                    datetime.fromisoformat(meta["data_start"]), datetime.fromisoformat(meta["data_end"]))


def read_events_table(snap: Snapshot, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(snap.events_path, columns=columns)


def read_examples_table(snap: Snapshot) -> pa.Table:
    return pq.read_table(snap.examples_path)


def parse_events(raw: Iterable[bytes]) -> list[Event]:
    """The snapshot's ``raw`` column back into validated events (same schema as the stream)."""
    return [EVENT_ADAPTER.validate_json(b) for b in raw]


def parse_record(value: bytes) -> list[Event]:
    """A Kafka record's valid events: one, or those of a batch record (invalid ones are in the DLQ)."""
    if value[:1] == b"[":
        try:
            arr = orjson.loads(value)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(arr, list):
            return []
        out: list[Event] = []
        for obj in arr:
            try:
                out.append(EVENT_ADAPTER.validate_python(obj))
            except ValueError:
                pass
        return out
    try:
        return [EVENT_ADAPTER.validate_json(value)]
    except ValueError:
        return []


_EXAMPLE_KEYS = ("group_id", "item_id", "grade", "impression_ts")  # present and not null in every example


def parse_example(value: bytes) -> list[dict[str, Any]]:
    """The rows of one training-topic record (one impression's group, or a single row)."""
    return [obj for obj in training_rows(value) if all(obj.get(k) is not None for k in _EXAMPLE_KEYS)]
