"""Errors a user can cause, each carrying one line that says what to do."""

from __future__ import annotations


class UserError(Exception):
    """Printed as a single ``error: ...`` line by the CLI, never as a traceback."""


class ServiceUnavailable(UserError):
    pass


def explain_settings_error(err: Exception) -> str:
    """One line from a pydantic ValidationError raised while reading STREAMREC_* settings."""
    errors = getattr(err, "errors", None)
    if callable(errors):
        parts = []
        for e in errors()[:3]:
            name = "STREAMREC_" + str(e["loc"][0]).upper() if e.get("loc") else "settings"
            parts.append(f"{name}: {e['msg']}")
        return "bad configuration: " + "; ".join(parts) + " (fix the environment variable or .env)"
    return f"bad configuration: {err}"
