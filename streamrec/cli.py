"""The ``streamrec`` command: one entry point, one subcommand per operator task."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pydantic import ValidationError

from streamrec.argtypes import positive_float, positive_int
from streamrec.bench_cli import add_bench_args
from streamrec.errors import UserError, explain_settings_error


if TYPE_CHECKING:
    from streamrec.settings import Settings


def _settings() -> Settings:
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

    from streamrec.services import port_open

    s = _settings()
    host, port = args.host or s.api_host, args.port or s.api_port
    if port_open(port, "127.0.0.1" if host in ("0.0.0.0", "") else host):
        raise UserError(f"port {port} is already in use: stop what runs there, or pick another with --port or STREAMREC_API_PORT")
    uvicorn.run(create_app(s), host=host, port=port, log_level="warning")
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


def cmd_replay(args: argparse.Namespace) -> int:
    from streamrec.replay import parse_when, replay, swap

    s = _settings()
    if args.swap:
        if args.into or args.from_ or args.until:
            raise UserError("--swap NAMESPACE takes no other option: build with --from/--into first, then swap")
        prev, last = asyncio.run(swap(s, args.swap))
        print(f"live namespace: {args.swap} (was {prev or s.namespace}); caught up {last.records} records")
        if last.not_retained:
            print(f"warning: {last.not_retained} records to catch up on were already deleted by the topics' "
                  f"retention; {args.swap} lacks them", file=sys.stderr)
        return 0
    if not args.into or not args.from_:
        raise UserError("use `streamrec replay --from earliest|ISO8601 [--until ISO8601] --into NAMESPACE` "
                        "or `streamrec replay --swap NAMESPACE`")
    start = None if args.from_ == "earliest" else parse_when(args.from_)
    until = parse_when(args.until) if args.until else None
    res = asyncio.run(replay(s, args.into, start, until))
    print(f"replayed {res.records} records ({res.applied} applied) into {res.namespace} in {res.seconds:.1f}s")
    if res.not_retained:
        print(f"warning: {res.not_retained} earlier records were already deleted by the topics' retention; "
              f"{res.namespace} lacks them (compare its digest with the live one before a --swap)", file=sys.stderr)
    for topic, partition, log_start in res.maybe_not_retained:
        print(f"warning: {topic} partition {partition}: its records before offset {log_start} were deleted by the "
              f"retention and the earliest one kept is already after --from; {res.namespace} may lack some "
              "from that time (replay from an earlier time or from earliest to be sure)", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from streamrec.bench_cli import bench_command

    return bench_command(_settings, args)


def cmd_train(args: argparse.Namespace) -> int:
    from offline.train_cli import train_command

    return train_command(_settings(), args.source, args.since, args.until, args.every, args.min_new_labels)


def cmd_models(args: argparse.Namespace) -> int:
    from offline.train_cli import models_command

    return models_command(_settings(), args.action, args.version)


def cmd_eval(args: argparse.Namespace) -> int:
    if args.what == "stream":
        from streamrec.eval_stream_cli import eval_stream_command

        return eval_stream_command(_settings(), args)
    from offline.train_cli import eval_command

    return eval_command(args.dataset, Path(args.json) if args.json else None)


def cmd_generate(args: argparse.Namespace) -> int:
    from offline.train_cli import generate_command

    return generate_command(Path(args.out), args.events, args.users, args.items, args.seed)


def cmd_demo(args: argparse.Namespace) -> int:
    from streamrec.demo import run_demo

    return run_demo(_settings(), limit=args.limit)


def _check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.exceptions.RedisError as err:
        raise UserError(f"cannot reach Redis at {url}: start it with `streamrec dev up` or set STREAMREC_REDIS_URL ({err})") from err


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
    sv.add_argument("--port", type=positive_int)
    sv.set_defaults(fn=cmd_serve)

    pb = sub.add_parser("publish", help="replay a dataset into the events topic")
    pb.add_argument("dataset", choices=["movielens"])
    pb.add_argument("--rate", type=positive_float, help="events per second (default: as fast as possible)")
    pb.add_argument("--limit", type=positive_int, help="publish only the first N ratings (by time)")
    pb.set_defaults(fn=cmd_publish)

    sc = sub.add_parser("schema", help="event contracts for app developers")
    sc.add_argument("action", choices=["export"])
    sc.add_argument("dir")
    sc.set_defaults(fn=cmd_schema)

    st = sub.add_parser("state", help="inspect online state: digest (stable hash) or stats")
    st.add_argument("action", choices=["digest", "stats"])
    st.add_argument("namespace", nargs="?", help="Redis key namespace (default: the live one)")
    st.set_defaults(fn=cmd_state)

    rp = sub.add_parser("replay", help="rebuild state from the retained topics into a namespace, or swap it live")
    rp.add_argument("--from", dest="from_", metavar="earliest|ISO8601", help="where to start (record time)")
    rp.add_argument("--until", metavar="ISO8601", help="stop at records appended after this time")
    rp.add_argument("--into", metavar="NAMESPACE", help="Redis key namespace to build (should be empty)")
    rp.add_argument("--swap", metavar="NAMESPACE", help="catch NAMESPACE up and make it live atomically")
    rp.set_defaults(fn=cmd_replay)

    bn = sub.add_parser("bench", help="benchmarks on their own broker + Redis; JSON out")
    add_bench_args(bn)
    bn.set_defaults(fn=cmd_bench)

    tr = sub.add_parser("train", help="retrain retrieval + ranker, gate, publish to the registry, write a report")
    tr.add_argument("--source", default="kafka", help="kafka (default), movielens, or a snapshot directory")
    tr.add_argument("--since", help="event-time start (ISO 8601) of the data read from Kafka")
    tr.add_argument("--until", help="event-time end (ISO 8601, exclusive)")
    tr.add_argument("--every", help="run on a schedule, e.g. 1h (default STREAMREC_TRAIN_EVERY)")
    tr.add_argument("--min-new-labels", type=positive_int, help="also run after N new labelled impressions (training-topic records)")
    tr.set_defaults(fn=cmd_train)

    md = sub.add_parser("models", help="the model registry: list, promote VERSION, rollback")
    md.add_argument("action", choices=["list", "promote", "rollback"])
    md.add_argument("version", nargs="?")
    md.set_defaults(fn=cmd_models)

    ev = sub.add_parser("eval", help="offline evaluation (fixed protocol), or streaming evaluation through the pipeline")
    ev.add_argument("what", choices=["offline", "stream"])
    ev.add_argument("--dataset", default="ml-100k")
    ev.add_argument("--json", metavar="PATH", help="write the JSON here")
    from streamrec.eval_stream_cli import add_eval_stream_args

    add_eval_stream_args(ev)
    ev.set_defaults(fn=cmd_eval)

    gn = sub.add_parser("generate", help="a synthetic event log as a Parquet snapshot (for `train --source DIR`)")
    gn.add_argument("--out", required=True, help="snapshot directory to write")
    gn.add_argument("--events", type=positive_int, default=1_000_000)
    gn.add_argument("--users", type=positive_int, default=5_000)
    gn.add_argument("--items", type=positive_int, default=20_000)
    gn.add_argument("--seed", type=int, default=0)
    gn.set_defaults(fn=cmd_generate)

    dm = sub.add_parser("demo", help="the whole loop on the embedded runtime, on MovieLens-100K")
    dm.add_argument("--limit", type=positive_int, help="replay only the first N ratings")
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
