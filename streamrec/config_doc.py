"""Render the configuration reference (docs/configuration.md) from the Settings class itself."""

from __future__ import annotations

from pydantic import SecretStr

from streamrec.settings import Settings


def _default(v: object) -> str:
    if isinstance(v, SecretStr):
        return "(empty)" if not v.get_secret_value() else "(set)"
    if v is None or v == "" or v == []:
        return "(unset)"
    return f"`{v}`"


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Every setting is an environment variable (or a line in `.env`). The embedded runtime,",
        "the tests and `docker-compose.yml` use the same names. Generated from",
        "`streamrec/settings.py` by `python -m streamrec.config_doc > docs/configuration.md`;",
        "a unit test fails when the two drift apart.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        desc = (field.description or "").replace("|", "\\|")
        default = field.default if field.default_factory is None else field.default_factory()  # type: ignore[call-arg]
        lines.append(f"| `STREAMREC_{name.upper()}` | {_default(default)} | {desc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
