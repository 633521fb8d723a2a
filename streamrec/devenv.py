"""``streamrec dev up|down|status``: the embedded runtime under ``.streamrec/``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

from streamrec import services
from streamrec.errors import UserError
from streamrec.kafka import ensure_topics
from streamrec.settings import Settings


def _state_file(s: Settings) -> Path:
    return s.state_dir / "dev.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child still "exists"; treat it as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True


def _read(s: Settings) -> dict[str, dict[str, int]]:
    try:
        data: dict[str, dict[str, int]] = json.loads(_state_file(s).read_text())
        return data
    except (OSError, ValueError):
        return {}


def connection_lines(s: Settings) -> list[str]:
    return [
        f"export STREAMREC_KAFKA_BOOTSTRAP=127.0.0.1:{s.dev_kafka_port}",
        f"export STREAMREC_REDIS_URL=redis://127.0.0.1:{s.dev_redis_port}/0",
    ]


def up(s: Settings) -> list[str]:
    """Start whatever is not running; returns lines to print."""
    state = _read(s)
    lines: list[str] = []
    for name, port, start in (
        ("kafka", s.dev_kafka_port, services.start_kafka),
        ("redis", s.dev_redis_port, services.start_redis),
    ):
        rec = state.get(name)
        if rec and _pid_alive(rec["pid"]) and services.port_open(rec["port"]):
            lines.append(f"{name}: already running (pid {rec['pid']}, port {rec['port']})")
            continue
        data_dir = s.state_dir / name
        svc = start(port, data_dir, detach=True)  # type: ignore[operator]
        state[name] = {"pid": svc.proc.pid, "port": port}
        lines.append(f"{name}: started (pid {svc.proc.pid}, port {port}, data {data_dir})")
    s.state_dir.mkdir(parents=True, exist_ok=True)
    _state_file(s).write_text(json.dumps(state))
    created = asyncio.run(ensure_topics(s))
    if created:
        lines.append("topics created: " + ", ".join(created))
    return lines + connection_lines(s)


def down(s: Settings) -> list[str]:
    state = _read(s)
    if not state:
        return ["nothing to stop: `streamrec dev up` has not started anything here"]
    lines = []
    for name, rec in state.items():
        pid = rec["pid"]
        if not _pid_alive(pid):
            lines.append(f"{name}: not running")
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        lines.append(f"{name}: stopped (pid {pid}); data kept under {s.state_dir / name}")
    _state_file(s).unlink(missing_ok=True)
    return lines


def status(s: Settings) -> tuple[bool, list[str]]:
    state = _read(s)
    ok = True
    lines = []
    for name, port, probe in (
        ("kafka", s.dev_kafka_port, lambda p: services.kafka_ping(f"127.0.0.1:{p}")),
        ("redis", s.dev_redis_port, services.redis_ping),
    ):
        rec = state.get(name)
        if rec and _pid_alive(rec["pid"]):
            answers = probe(rec["port"])
            ok &= answers
            lines.append(f"{name}: running (pid {rec['pid']}, port {rec['port']}, {'answering' if answers else 'NOT answering'})")
        else:
            ok = False
            lines.append(f"{name}: not running (start it with `streamrec dev up`)")
    if ok:
        lines += connection_lines(s)
    return ok, lines


def require_running(s: Settings) -> None:
    ok, lines = status(s)
    if not ok:
        raise UserError("the embedded runtime is not running: " + "; ".join(lines))
