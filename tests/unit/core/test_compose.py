"""docker-compose.yml is read, not run (no Docker engine here): check it against the settings."""

from __future__ import annotations

from pathlib import Path

import yaml

from streamrec.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_dependencies() -> None:
    svc = compose()["services"]
    assert set(svc) >= {"kafka", "redis", "topics", "worker", "api"}
    assert svc["topics"]["command"] == ["topics", "create"]
    for app in ("worker", "api"):
        deps = svc[app]["depends_on"]
        assert deps["topics"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
    assert svc["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_kafka_is_kraft_and_redis_has_aof() -> None:
    svc = compose()["services"]
    env = svc["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith("1@kafka:")
    listeners = {part.split("://")[0] for part in env["KAFKA_LISTENERS"].split(",")}
    advertised = {part.split("://")[0] for part in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert advertised <= listeners and env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    cmd = svc["redis"]["command"]
    assert cmd[cmd.index("--appendonly") + 1] == "yes"


def test_app_environment_uses_real_settings_names_and_valid_values() -> None:
    svc = compose()["services"]
    fields = {f"STREAMREC_{name.upper()}" for name in Settings.model_fields}
    for app in ("topics", "worker", "api"):
        env = svc[app]["environment"]
        unknown = {k for k in env if k not in fields}
        assert not unknown, f"{app}: {unknown} are not settings"
        values = {k[len("STREAMREC_"):].lower(): v for k, v in env.items() if "${" not in str(v)}
        s = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        host, port = s.kafka_bootstrap.split(":")
        kafka_env = svc["kafka"]["environment"]
        assert f"//{host}:{port}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]


def test_configuration_reference_is_current() -> None:
    from streamrec.config_doc import render

    assert (ROOT / "docs" / "configuration.md").read_text() == render(), (
        "docs/configuration.md is stale: run `python -m streamrec.config_doc > docs/configuration.md`")
