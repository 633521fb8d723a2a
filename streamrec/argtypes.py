"""argparse value types shared by the CLI's commands (one clear message per bad value)."""

from __future__ import annotations

import argparse


def positive_int(v: str) -> int:
    try:
        n = int(v)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {v!r}") from err
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {n}")
    return n


def positive_float(v: str) -> float:
    try:
        x = float(v)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number, got {v!r}") from err
    if not x > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {v}")
    return x


def retention_seconds(v: str) -> int:
    """0 (the broker's default) or at least STREAMREC_TOPIC_RETENTION_MS's lower bound, in seconds."""
    try:
        n = int(v)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a whole number of seconds, got {v!r}") from err
    from streamrec.settings import MIN_TOPIC_RETENTION_MS  # here: settings' imports would slow every CLI start

    least = MIN_TOPIC_RETENTION_MS // 1000
    if n != 0 and n < least:
        raise argparse.ArgumentTypeError(f"expected 0 (the broker's default) or at least {least} seconds, got {n}")
    return n


def fraction(v: str) -> float:
    try:
        x = float(v)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.1, got {v!r}") from err
    if not 0.0 < x <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {v}")
    return x
