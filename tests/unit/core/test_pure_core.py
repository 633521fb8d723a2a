"""The pure core imports no adapter: no Kafka, Redis, Faust or web framework."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = [
    "schemas",
    "streams.writes",
    "streams.keys",
    "streams.digest",
    "streams.online_state",
    "streams.store",
    "streams.store_memory",
    "streams.features",
    "streams.labels",
    "serving.mmr",
    "offline.metrics",
]


@pytest.mark.parametrize("module", PURE)
def test_module_imports_no_adapter(module: str) -> None:
    code = (f"import sys, importlib; importlib.import_module({module!r});"
            "bad = [m for m in ('redis', 'faust', 'aiokafka', 'fastapi', 'uvicorn') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
