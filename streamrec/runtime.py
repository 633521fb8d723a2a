"""Run streamrec's own processes (worker, API) as children with a given environment.

Used by the demo, the integration tests and the benchmarks: each gets real
processes that can be SIGKILLed and restarted, talking to real services.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from streamrec.errors import ServiceUnavailable


def isolated_env(kafka_port: int, redis_port: int, state_dir: Path, prefix: str,
                 partitions: int | None = None) -> dict[str, str]:
    """STREAMREC_* variables for a run that shares a broker and Redis with others but none of their data:
    its own topics, namespace, consumer group and state directory (tests, benchmarks)."""
    tag = uuid.uuid4().hex[:8]
    env = {
        "STREAMREC_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "STREAMREC_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "STREAMREC_NAMESPACE": f"{prefix}{tag}",
        "STREAMREC_TOPIC_EVENTS": f"events.{tag}",
        "STREAMREC_TOPIC_DLQ": f"dlq.{tag}",
        "STREAMREC_TOPIC_IMPRESSIONS": f"impressions.{tag}",
        "STREAMREC_TOPIC_TRAINING": f"training.{tag}",
        "STREAMREC_WORKER_ID": f"{prefix}-worker-{tag}",
        "STREAMREC_STATE_DIR": str(state_dir),
    }
    if partitions is not None:
        env["STREAMREC_TOPIC_PARTITIONS"] = str(partitions)
    return env


def env_for(base: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(base)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    def start(self) -> "Child":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamrec.cli", *self.args],
            env=env_for(self.env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self.starts += 1
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no final commit — the crash the worker must survive."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def worker(env: dict[str, str], log_path: Path) -> Child:
    return Child("worker", ["worker"], env, log_path)


def api(env: dict[str, str], port: int, log_path: Path) -> Child:
    return Child("api", ["serve", "--host", "127.0.0.1", "--port", str(port)], env, log_path)


def wait_http(url: str, child: Child, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise ServiceUnavailable(f"{child.name} exited during start-up: {child.log_tail(5)}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ServiceUnavailable(f"{child.name} did not answer {url} within {timeout:.0f}s: {child.log_tail(5)}")
