"""Every error a user can cause prints one line saying what to do — never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "streamrec.cli", *args], capture_output=True, text=True,
                          env=full, cwd=cwd or ROOT, timeout=60)


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines, "no error printed"
    return lines[-1]


def test_help_lists_every_subcommand() -> None:
    p = cli("--help")
    assert p.returncode == 0
    for name in ("dev", "worker", "serve", "publish", "schema", "state", "demo", "topics"):
        assert name in p.stdout


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("STREAMREC_KAFKA_BOOTSTRAP", "no-port-here", "STREAMREC_KAFKA_BOOTSTRAP"),
        ("STREAMREC_REDIS_URL", "http://x", "STREAMREC_REDIS_URL"),
        ("STREAMREC_TOPIC_PARTITIONS", "zero", "STREAMREC_TOPIC_PARTITIONS"),
        ("STREAMREC_TOPIC_RETENTION_MS", "1000", "STREAMREC_TOPIC_RETENTION_MS"),
    ],
)
def test_bad_configuration_is_one_clear_line(var: str, value: str, needle: str, tmp_path: Path) -> None:
    line = one_line_error(cli("state", "digest", env={var: value}, cwd=tmp_path))
    assert line.startswith("error: bad configuration") and needle in line


def test_a_segment_longer_than_the_retention_is_one_clear_line(tmp_path: Path) -> None:
    env = {"STREAMREC_TOPIC_RETENTION_MS": "600000", "STREAMREC_TOPIC_SEGMENT_MS": "900000"}
    line = one_line_error(cli("state", "digest", env=env, cwd=tmp_path))
    assert line.startswith("error: bad configuration") and "STREAMREC_TOPIC_SEGMENT_MS" in line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["publish", "movielens", "--limit", "-3"], "--limit"),
        (["publish", "movielens", "--rate", "fast"], "--rate"),
        (["publish", "netflix"], "invalid choice"),
        (["nonsense"], "invalid choice"),
        (["bench", "soak", "--retention-s", "30"], "--retention-s"),
    ],
)
def test_bad_arguments_are_one_clear_line(args: list[str], needle: str) -> None:
    line = one_line_error(cli(*args))
    assert needle in line


def test_schema_export_writes_json_schema(tmp_path: Path) -> None:
    p = cli("schema", "export", str(tmp_path / "out"))
    assert p.returncode == 0, p.stderr
    files = sorted(f.name for f in (tmp_path / "out").iterdir())
    assert "event.schema.json" in files and "view.schema.json" in files
    import json

    view = json.loads((tmp_path / "out" / "view.schema.json").read_text())
    assert "dwell_ms" in view["properties"] and view["additionalProperties"] is False
