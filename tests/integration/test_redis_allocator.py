"""The embedded Redis runs on mimalloc when its binary was built with glibc's malloc (streamrec.services)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from streamrec import services

pytestmark = pytest.mark.integration


def mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_the_shared_redis_preloads_mimalloc_exactly_when_built_with_libc_malloc(infra) -> None:  # type: ignore[no-untyped-def]
    red: services.Service = infra["redis"]
    binary = services.redis_binary()
    lib = services.mimalloc_library()
    maps = mapped_libraries(red.proc.pid)
    if services._links_libc_malloc(binary) and lib is not None:
        # /proc maps name the file by its real path (the environment may be reached through a symlink)
        assert str(Path(lib).resolve()) in maps, "mimalloc should be preloaded into a libc-malloc server"
        # and the server works on it: writes, reads, a script, an AOF rewrite
        c = redis.Redis(port=red.port)
        c.set("alloc:probe", b"x" * 100_000)
        assert c.eval("return #redis.call('GET', KEYS[1])", 1, "alloc:probe") == 100_000
        c.bgrewriteaof()
        c.delete("alloc:probe")
    else:
        assert "libmimalloc" not in maps


def test_mimalloc_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_REDIS_MIMALLOC", "0")
    assert services.redis_env(services.redis_binary()) is None
    red = services.start_redis(services.free_port(), tmp_path / "redis", aof=False)
    try:
        assert "libmimalloc" not in mapped_libraries(red.proc.pid)
        assert redis.Redis(port=red.port).ping()
    finally:
        red.stop()
