"""Forward exponential decay in log2 space, and small parsing helpers.

A decayed sum  S(now) = sum_i w_i * 2^(-(now - t_i) / h)  is stored as the
log2 of  sum_i w_i * 2^((t_i - epoch) / h)  (``zlogadd`` adds in linear space
without overflow), so every update is commutative and nothing is rewritten
when time passes:  S(now) = 2^(score - (now - epoch) / h).
"""

from __future__ import annotations

import math

MAX_EXP = 1000.0


def log2_weight(weight: float, ts_s: float, half_life_s: float, epoch_s: float) -> float:
    if weight <= 0:
        raise ValueError("forward-decay weights must be positive")
    return math.log2(weight) + (ts_s - epoch_s) / half_life_s


def decayed(score: float | None, now_s: float, half_life_s: float, epoch_s: float) -> float:
    """Value at ``now`` of a log2 forward-decay score (0 when absent)."""
    if score is None:
        return 0.0
    return math.pow(2.0, min(MAX_EXP, float(score) - (now_s - epoch_s) / half_life_s))


def num(value: object, default: float = 0.0) -> float:
    """Parse a stored hash value (str/bytes/None) to float."""
    if value is None:
        return default
    if isinstance(value, bytes):
        value = value.decode()
    return float(value)  # type: ignore[arg-type]


def ratio(num_: float, den: float) -> float:
    """num/den, NaN (missing, LightGBM-native) when den is 0."""
    return num_ / den if den > 0 else math.nan
