"""The ``streamrec`` command: one entry point, one subcommand per operator task."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Callable

from pydantic import ValidationError

from streamrec.errors import UserError, explain_settings_error


def _settings():  # type: ignore[no-untyped-def]
    from streamrec.settings import get_settings

    return get_settings()


def cmd_dev(args: argparse.Namespace) -> int:
    from streamrec import devenv

    s = _settings()
    if args.action == "up":
        lines = devenv.up(s)
        ok = True
    elif args.action == "down":
        lines, ok = devenv.down(s), True
    else:
        ok, lines = devenv.status(s)
    print("\n".join(lines))
    return 0 if ok else 1


def cmd_topics(args: argparse.Namespace) -> int:
    from streamrec.kafka import all_topics, ensure_topics

    s = _settings()
    created = asyncio.run(ensure_topics(s))
    print("created: " + (", ".join(created) or "none (all exist)") + f"; topics: {', '.join(all_topics(s))}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.worker import run_worker
    from streamrec.kafka import ensure_topics

    s = _settings()
    asyncio.run(ensure_topics(s))
    _check_redis(s.redis_url)
    run_worker(s, args.loglevel)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from serving.main import create_app

    s = _settings()
    uvicorn.run(create_app(s), host=args.host or s.api_host, port=args.port or s.api_port, log_level="warning")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from offline.movielens import DatasetMissing, load
    from streamrec.movielens_events import metadata_events, rating_events
    from streamrec.publisher import publish_events

    s = _settings()
    try:
        ml = load(limit=args.limit)
    except DatasetMissing as err:
        raise UserError(str(err)) from err
    meta = list(metadata_events(ml))
    r1 = asyncio.run(publish_events(s, meta, len(meta), args.rate, "metadata"))
    r2 = asyncio.run(publish_events(s, rating_events(ml), len(ml.ratings), args.rate, "ratings"))
    total = r1.published + r2.published
    print(f"published {total} events ({r1.published} metadata, {r2.published} ratings) "
          f"to {s.topic_events} in {r1.seconds + r2.seconds:.1f}s")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from schemas.export import export_json_schema

    paths = export_json_schema(Path(args.dir))
    print(f"wrote {len(paths)} JSON Schema files to {args.dir}")
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    from streamrec.state_cli import digest, stats

    s = _settings()
    if args.action == "digest":
        print(asyncio.run(digest(s, args.namespace)))
    else:
        print(json.dumps(asyncio.run(stats(s, args.namespace)), indent=2, sort_keys=True))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from streamrec.demo import run_demo

    return run_demo(_settings(), limit=args.limit)


def _check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.exceptions.RedisError as err:
        raise UserError(f"cannot reach Redis at {url}: start it with `streamrec dev up` or set STREAMREC_REDIS_URL ({err})") from err


def _positive_int(v: str) -> int:
    try:
        n = int(v)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {v!r}") from err
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {n}")
    return n


def _positive_float(v: str) -> float:
    try:
        x = float(v)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number, got {v!r}") from err
    if not x > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {v}")
    return x


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streamrec", description="Real-time event-streaming recommender.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("dev", help="embedded runtime: broker + Redis on 127.0.0.1, data under .streamrec/")
    d.add_argument("action", choices=["up", "down", "status"])
    d.set_defaults(fn=cmd_dev)

    t = sub.add_parser("topics", help="create the Kafka topics streamrec uses")
    t.add_argument("action", choices=["create"])
    t.set_defaults(fn=cmd_topics)

    w = sub.add_parser("worker", help="run the stream worker (Faust): events -> Redis online state")
    w.add_argument("--loglevel", default="warn", choices=["crit", "error", "warn", "info", "debug"])
    w.set_defaults(fn=cmd_worker)

    sv = sub.add_parser("serve", help="run the HTTP API (uvicorn)")
    sv.add_argument("--host")
    sv.add_argument("--port", type=_positive_int)
    sv.set_defaults(fn=cmd_serve)

    pb = sub.add_parser("publish", help="replay a dataset into the events topic")
    pb.add_argument("dataset", choices=["movielens"])
    pb.add_argument("--rate", type=_positive_float, help="events per second (default: as fast as possible)")
    pb.add_argument("--limit", type=_positive_int, help="publish only the first N ratings (by time)")
    pb.set_defaults(fn=cmd_publish)

    sc = sub.add_parser("schema", help="event contracts for app developers")
    sc.add_argument("action", choices=["export"])
    sc.add_argument("dir")
    sc.set_defaults(fn=cmd_schema)

    st = sub.add_parser("state", help="inspect online state: digest (stable hash) or stats")
    st.add_argument("action", choices=["digest", "stats"])
    st.add_argument("namespace", nargs="?", help="Redis key namespace (default: the live one)")
    st.set_defaults(fn=cmd_state)

    dm = sub.add_parser("demo", help="the whole loop on the embedded runtime, on MovieLens-100K")
    dm.add_argument("--limit", type=_positive_int, help="replay only the first N ratings")
    dm.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    fn: Callable[[argparse.Namespace], int] = args.fn
    try:
        return fn(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValidationError as err:
        print(f"error: {explain_settings_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
