"""The training topic's records: one per impression, holding every row of its group."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest

from offline.snapshot import parse_example
from streams.training_records import group_json, group_rows, row_dict, training_rows
from streams.labels import TrainingRow

T = datetime(2025, 6, 1, 12, 30, tzinfo=timezone.utc)
NAMES = ("a", "b")


def _row(group: str, item: str, pos: int, grade: int, feats: tuple[float, ...] | None = (0.5, -1.0),
         user: str = "u1") -> TrainingRow:
    return TrainingRow(group, user, item, pos, "m7", T, NAMES, feats, grade, max(grade, 0))


def test_a_group_record_gives_back_every_row_as_the_single_row_records_did() -> None:
    rows = [_row("r1", "i1", 0, 3), _row("r1", "i2", 1, -1), _row("r1", "i3", 2, 0, None)]
    got = training_rows(group_json(rows))
    assert got == [orjson.loads(orjson.dumps(row_dict(r))) for r in rows]
    assert [d["row_id"] for d in got] == ["r1:i1", "r1:i2", "r1:i3"]
    assert got[2]["features"] is None and got[2]["feature_names"] == list(NAMES)  # names: once per group
    raw = orjson.loads(group_json(rows))
    assert raw["feature_names"] == list(NAMES) and len(raw["rows"]) == 3 and "feature_names" not in raw["rows"][0]


def test_single_row_records_still_parse() -> None:
    r = _row("r9", "i4", 3, 2)
    single = orjson.dumps(row_dict(r))  # one record per row, as earlier versions sent them
    assert training_rows(single) == [orjson.loads(single)]
    assert parse_example(single)[0]["item_id"] == "i4"


def test_consecutive_rows_are_grouped_per_impression() -> None:
    rows = [_row("r1", "i1", 0, 0), _row("r1", "i2", 1, 0), _row("r2", "i1", 0, 4), _row("r3", "i5", 0, 1)]
    assert [[r.item_id for r in g] for g in group_rows(rows)] == [["i1", "i2"], ["i1"], ["i5"]]
    assert group_rows([]) == []
    # the same request id for two users (e.g. apps publishing impressions): two records, no error
    twins = [_row("r1", "i1", 0, 0), _row("r1", "i2", 1, 0), _row("r1", "i1", 0, 2, user="u2")]
    groups = group_rows(twins)
    assert [[r.user_id for r in g] for g in groups] == [["u1", "u1"], ["u2"]]
    assert [len(training_rows(group_json(g))) for g in groups] == [2, 1]
    with pytest.raises(ValueError):
        group_json([_row("r1", "i1", 0, 0), _row("r2", "i2", 1, 0)])
    with pytest.raises(ValueError):
        group_json([_row("r1", "i1", 0, 0), _row("r1", "i2", 1, 0, user="u2")])
    with pytest.raises(ValueError):
        group_json([])


@pytest.mark.parametrize("value", [b"not json", b"[1,2]", b'"x"', b'{"rows": 3}', b'{"rows": [1, "x"]}',
                                   b'{"group_id": "g", "rows": [{"item_id": "i"}]}'])
def test_malformed_records_give_no_examples(value: bytes) -> None:
    assert parse_example(value) == []
