"""The embedded runtime and the CLI against real (or missing) services."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec import services
from tests.unit.core.test_cli_errors import cli, one_line_error

pytestmark = pytest.mark.integration


def test_missing_services_are_one_clear_line(tmp_path: Path) -> None:
    closed = services.free_port()
    line = one_line_error(cli("state", "digest", env={"STREAMREC_REDIS_URL": f"redis://127.0.0.1:{closed}/0"}, cwd=tmp_path))
    assert "cannot reach Redis" in line and "streamrec dev up" in line
    line = one_line_error(cli("publish", "movielens", "--limit", "5",
                              env={"STREAMREC_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed}"}, cwd=tmp_path))
    assert "cannot reach Kafka" in line and "STREAMREC_KAFKA_BOOTSTRAP" in line


def test_dev_up_status_down(tmp_path: Path) -> None:
    env = {
        "STREAMREC_STATE_DIR": str(tmp_path / "state"),
        "STREAMREC_DEV_KAFKA_PORT": str(services.free_port()),
        "STREAMREC_DEV_REDIS_PORT": str(services.free_port()),
    }
    env["STREAMREC_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{env['STREAMREC_DEV_KAFKA_PORT']}"
    env["STREAMREC_REDIS_URL"] = f"redis://127.0.0.1:{env['STREAMREC_DEV_REDIS_PORT']}/0"
    try:
        up = cli("dev", "up", env=env, cwd=tmp_path)
        assert up.returncode == 0, up.stderr
        assert "kafka: started" in up.stdout and "redis: started" in up.stdout
        assert f"STREAMREC_REDIS_URL=redis://127.0.0.1:{env['STREAMREC_DEV_REDIS_PORT']}/0" in up.stdout
        assert (tmp_path / "state" / "redis").is_dir() and (tmp_path / "state" / "kafka").is_dir()
        again = cli("dev", "up", env=env, cwd=tmp_path)
        assert "already running" in again.stdout
        st = cli("dev", "status", env=env, cwd=tmp_path)
        assert st.returncode == 0 and st.stdout.count("answering") == 2, st.stdout
        pub = cli("publish", "movielens", "--limit", "50", env=env, cwd=tmp_path)
        assert pub.returncode == 0, pub.stderr
        assert "published 2675 events" in pub.stdout  # 1682 movies + 943 users + 50 ratings
    finally:
        down = cli("dev", "down", env=env, cwd=tmp_path)
    assert down.returncode == 0 and down.stdout.count("stopped") == 2, down.stdout
    st = cli("dev", "status", env=env, cwd=tmp_path)
    assert st.returncode == 1 and "not running" in st.stdout
