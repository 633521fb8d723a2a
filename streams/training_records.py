"""The training topic's records: one per impression, holding every row of its group (pure).

``label_flow.close`` joins an impression with the interactions that followed it and
gives one ``TrainingRow`` per impressed item; the worker sends each impression's rows
as ONE record keyed by its group id (a record per row cost the worker ~10x the producer
calls).  ``training_rows`` turns a record back into one dict per row, and still reads
the single-row records (``row_dict`` as JSON) of earlier versions.
"""

from __future__ import annotations

from typing import Any, Sequence

import orjson

from streams.labels import TrainingRow


def row_dict(row: TrainingRow) -> dict[str, Any]:
    """One row as ``training_rows`` gives it back (and as earlier versions sent it, one record each)."""
    return {
        "row_id": f"{row.group_id}:{row.item_id}", "group_id": row.group_id, "user_id": row.user_id,
        "item_id": row.item_id, "position": row.position, "model_version": row.model_version,
        "impression_ts": row.impression_ts.isoformat(), "feature_names": row.feature_names,
        "features": row.features, "grade": row.grade, "relevance": row.relevance,
    }


_GROUP_FIELDS = ("group_id", "user_id", "model_version", "impression_ts", "feature_names")
_ROW_FIELDS = ("row_id", "item_id", "position", "features", "grade", "relevance")


def group_json(rows: Sequence[TrainingRow]) -> bytes:
    """One impression's training rows as ONE record on the training topic: the fields every row
    of a group shares once, then ``rows`` (each with a ``row_id`` for consumers to drop repeats).
    ``training_rows`` turns it back into one dict per row."""
    if not rows:
        raise ValueError("a training group needs at least one row")
    dicts = [row_dict(r) for r in rows]
    out: dict[str, Any] = {k: dicts[0][k] for k in _GROUP_FIELDS}
    if any(d[k] != out[k] for d in dicts for k in _GROUP_FIELDS):
        raise ValueError(f"rows of one training record must share {', '.join(_GROUP_FIELDS)} (one impression)")
    out["rows"] = [{k: d[k] for k in _ROW_FIELDS} for d in dicts]
    return orjson.dumps(out)


def group_rows(rows: Sequence[TrainingRow]) -> list[list[TrainingRow]]:
    """Consecutive rows of the same impression (``close`` emits each impression's rows together);
    two impressions with the same request id (different users) stay apart."""
    out: list[list[TrainingRow]] = []
    for r in rows:
        if out and _shared(out[-1][0]) == _shared(r):
            out[-1].append(r)
        else:
            out.append([r])
    return out


def _shared(r: TrainingRow) -> tuple[object, ...]:
    return tuple(getattr(r, k) for k in _GROUP_FIELDS)  # the record's shared fields are row attributes


def training_rows(value: bytes) -> list[dict[str, Any]]:
    """A training-topic record as one dict per row (``row_dict``'s shape), from a group record
    (``group_json``) or a single-row record; [] for anything else."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(obj, dict):
        return []
    members = obj.get("rows")
    if members is None:
        return [obj]
    if not isinstance(members, list):
        return []
    shared = {k: obj.get(k) for k in _GROUP_FIELDS}
    return [shared | m for m in members if isinstance(m, dict)]
