"""``streamrec eval stream`` options and body (kept apart so ``streamrec/cli.py`` only delegates).

Imports nothing heavy at module level: the parser is built on every ``streamrec`` call.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from streamrec.argtypes import fraction, positive_int
from streamrec.errors import UserError


def add_eval_stream_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=positive_int, help="stream: replay only the first N ratings (by time)")
    p.add_argument("--chunk", type=positive_int, default=250,
                   help="stream: ratings published per step; queries see the state at the step's start (default 250)")
    p.add_argument("--retrain-every", type=fraction, default=0.1,
                   help="stream: retrain after every this fraction of the stream (default 0.1; 1 = never)")
    p.add_argument("--mmr-lambda", type=float, default=1.0,
                   help="stream: MMR lambda sent with every /recommend (default 1 = rank by relevance only; "
                        "-1 = the server's default)")
    p.add_argument("--concurrency", type=positive_int, default=4, help="stream: /recommend requests in flight (default 4)")


def eval_stream_command(settings: Any, args: argparse.Namespace) -> int:
    from streamrec.eval_stream import run_eval_stream

    if args.dataset != "ml-100k":
        raise UserError(f"unknown dataset {args.dataset!r}: only ml-100k is supported")
    out = Path(args.json) if args.json else None
    result = run_eval_stream(settings, out, limit=args.limit, chunk=args.chunk, retrain_every=args.retrain_every,
                             concurrency=args.concurrency,
                             mmr_lambda=None if args.mmr_lambda < 0 else min(args.mmr_lambda, 1.0))
    print(format_table(result))
    print(json.dumps({"systems": result["systems"], "timings": result["timings"]}, indent=2))
    if out:
        print(f"wrote {out}")
    return 0


def format_table(result: dict[str, Any]) -> str:
    """The systems as a markdown table.

    >>> print(format_table({"systems": {"full": {"hr@10": 0.5, "ndcg@10": 0.25, "n": 4}}}))
    | system | HR@10 | NDCG@10 | n |
    |---|---|---|---|
    | full | 0.5000 | 0.2500 | 4 |
    """
    rows = ["| system | HR@10 | NDCG@10 | n |", "|---|---|---|---|"]
    for name, m in result["systems"].items():
        rows.append(f"| {name} | {m['hr@10']:.4f} | {m['ndcg@10']:.4f} | {m['n']} |")
    return "\n".join(rows)
