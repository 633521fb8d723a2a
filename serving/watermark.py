"""Watermark tokens: "partition:offset,..." — the positions an ingest call reached."""

from __future__ import annotations


def encode_token(marks: dict[int, int]) -> str | None:
    if not marks:
        return None
    return ",".join(f"{p}:{o}" for p, o in sorted(marks.items()))


def decode_token(token: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for part in token.split(","):
        p, sep, o = part.partition(":")
        if not sep or not p.isdigit() or not o.isdigit():
            raise ValueError(f"bad watermark token {token!r}: expected 'partition:offset,...'")
        out[int(p)] = max(out.get(int(p), 0), int(o))
    return out


def reached(applied: dict[int, int], wanted: dict[int, int]) -> bool:
    return all(applied.get(p, 0) >= o for p, o in wanted.items())
