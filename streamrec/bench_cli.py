"""``streamrec bench`` options and body (kept apart so ``streamrec/cli.py`` only delegates).

Imports nothing heavy at module level: the parser is built on every ``streamrec`` call, and
each benchmark imports its own module only when it runs.  Every benchmark's JSON carries the
machine probe taken before it starts (``bench.machine.measured``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from streamrec.argtypes import positive_float, positive_int, retention_seconds

if TYPE_CHECKING:
    from streamrec.settings import Settings


def add_bench_args(bn: argparse.ArgumentParser) -> None:
    bn.add_argument("which", choices=["ingest", "freshness", "serve", "train", "soak"])
    bn.add_argument("--source", default="movielens", help="train: movielens or a snapshot dir (`streamrec generate`)")
    bn.add_argument("--clients", type=positive_int, default=2, help="serve: concurrent closed-loop clients")
    bn.add_argument("--duration", type=positive_float, default=20.0, help="serve: seconds of measured load")
    bn.add_argument("--items", type=positive_int, default=10_000, help="serve: catalogue size")
    bn.add_argument("--minutes", type=positive_float, default=5.0, help="soak: how long to run")
    bn.add_argument("--rps", type=positive_float, default=100.0, help="soak: /recommend requests per second")
    bn.add_argument("--png", metavar="PATH", help="soak: where to write the plot (default beside --json)")
    bn.add_argument("--retention-s", type=retention_seconds, default=60,
                    help="soak: retention of its topics on its private broker (0 = the broker's default: the "
                         "embedded broker's CPU then grows with all it has stored)")
    bn.add_argument("--events", type=positive_int, default=200_000, help="ingest: events to push through")
    bn.add_argument("--record-batch", type=positive_int, default=None,
                    help="ingest: events per Kafka record (1 = one record per event; default STREAMREC_PUBLISH_BATCH)")
    bn.add_argument("--probes", type=positive_int, default=300, help="freshness: probe events")
    bn.add_argument("--rate", type=positive_float, default=None,
                    help="background events/s (freshness: 1000, soak: 2000)")
    bn.add_argument("--json", metavar="PATH", help="write the JSON here (default: print it)")


def bench_command(settings: Callable[[], Settings], args: argparse.Namespace) -> int:
    """Run ``args.which``; ``settings`` is called only once the benchmark needs them."""
    if args.which == "train":
        from offline.train_cli import bench_train_command

        return bench_train_command(settings(), args.source, Path(args.json) if args.json else None)
    if args.which == "serve":
        from bench.serve import main as bench_serve

        return bench_serve(args.json, args.clients, args.duration, args.items)
    if args.which == "soak":
        return _bench_soak(settings, args)
    if args.which == "ingest":
        from bench.ingest import run_ingest_bench as run
    else:
        from bench.freshness import run_freshness_bench as run
    from bench.machine import measured

    result = measured(lambda: run(settings(), args))
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.json:
        Path(args.json).write_text(text + "\n")
        print(f"wrote {args.json}")
    else:
        print(text)
    return 0


def _bench_soak(settings: Callable[[], Settings], args: argparse.Namespace) -> int:
    from bench.machine import measured
    from bench.soak import run_soak

    rate = args.rate or 2000.0
    png = Path(args.png) if args.png else (Path(args.json).with_suffix(".png") if args.json else Path("soak.png"))
    result = measured(lambda: run_soak(settings(), args.minutes, rate, args.rps, sample_s=5.0, png=png,
                                       retention_s=args.retention_s))
    text = json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2, sort_keys=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.json} and {png}")
    print(text)
    return 0
