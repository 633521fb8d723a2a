"""Write the JSON Schema of every event type, plus the union, for app developers."""

from __future__ import annotations

from pathlib import Path

import orjson

from schemas.events import EVENT_ADAPTER, EVENT_MODELS


def export_json_schema(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in EVENT_MODELS.items():
        p = out_dir / f"{name}.schema.json"
        p.write_bytes(orjson.dumps(model.model_json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        paths.append(p)
    p = out_dir / "event.schema.json"
    p.write_bytes(orjson.dumps(EVENT_ADAPTER.json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    paths.append(p)
    return paths
