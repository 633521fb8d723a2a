"""Hostile input through both ingestion paths (HTTP and straight to Kafka), then exact reconciliation:

    published = applied + dead-lettered + duplicates

Hypothesis draws batches of valid and hostile records (wrong types, huge strings, NaN and
inf, negative dwell, ratings 0 and 6, year-2100 timestamps, unicode ids, missing ids,
unknown types, duplicate ids, non-JSON bytes, deeply nested JSON). Every valid event
must be applied exactly once; nothing may crash.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import orjson
import pytest
import redis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings as hsettings
from hypothesis import strategies as st

from schemas.codec import MAX_RECORD_BYTES
from serving.main import create_app
from streams import keys
from streamrec.kafka import ensure_topics, start_producer
from streamrec.runtime import Child
from streamrec.settings import Settings
from tests.integration.conftest import run, wait_until
from tests.integration.test_ingest import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BATCH = 50
EXAMPLES = 110  # x 2 paths x 50 = 11,000 records
STALL_S = 60.0  # the worker applies continuously: this long without progress is a failure
TS = "2024-05-01T10:00:00Z"

SEQ = itertools.count()  # valid events get unique ids; duplicates are made on purpose only
ids = st.one_of(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12),
                st.sampled_from(["ü-ß-用户", "🙂", "i-1", "i-2", "u-1"]))


@st.composite
def valid(draw: st.DrawFn) -> dict[str, object]:
    kind = draw(st.sampled_from(["view", "click", "save", "share", "rate", "implement", "dismiss"]))
    ev: dict[str, object] = {"type": kind, "event_id": f"v-{next(SEQ)}", "ts": TS,
                             "user_id": draw(ids), "item_id": draw(ids)}
    if kind == "view":
        ev["dwell_ms"] = draw(st.integers(0, 86_400_000))
    if kind == "rate":
        ev["rating"] = draw(st.integers(1, 5))
    return ev


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    base = {"type": "click", "event_id": f"h-{draw(st.uuids())}", "ts": TS, "user_id": "u", "item_id": "i"}
    choice = draw(st.integers(0, 12))
    if choice == 0:
        return orjson.dumps({**base, "user_id": draw(st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.none(), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3)))})
    if choice == 1:
        return orjson.dumps({**base, "item_id": "x" * draw(st.integers(129, 100_000))})
    if choice == 2:
        return orjson.dumps(base)[:-1] + b', "dwell_ms": ' + draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity"])) + b"}"
    if choice == 3:
        return orjson.dumps({**base, "type": "view", "dwell_ms": draw(st.integers(-(2**63), -1))})
    if choice == 4:
        return orjson.dumps({**base, "type": "rate", "rating": draw(st.sampled_from([0, 6, -1, 2.5, "5"]))})
    if choice == 5:
        return orjson.dumps({**base, "ts": draw(st.sampled_from(["2100-01-01T00:00:00Z", "yesterday", "2024-13-01T00:00:00Z", ""]))})
    if choice == 6:
        missing = draw(st.sampled_from(["event_id", "user_id", "item_id", "ts", "type"]))
        return orjson.dumps({k: v for k, v in base.items() if k != missing})
    if choice == 7:
        return orjson.dumps({**base, "type": draw(st.text(max_size=10).filter(lambda t: t not in {"view", "click", "save", "share", "rate", "implement", "dismiss", "item", "user", "impression"}))})
    if choice == 8:
        return draw(st.binary(max_size=200)).replace(b"{", b"")  # never a JSON object
    if choice == 9:
        # 1,024 levels is orjson's limit: such an object parses alone but not inside a batch record
        depth = draw(st.one_of(st.sampled_from([1023, 1024, 1025]), st.integers(100, 3000)))
        return b'{"a":' * depth + b"1" + b"}" * depth
    if choice == 10:
        return orjson.dumps({**base, "extra": draw(st.text(max_size=20))})
    if choice == 11:  # arrays that are not batch records (1..1000 event objects): one rejection each
        return draw(st.sampled_from([orjson.dumps([base, 1]), b"[]", orjson.dumps([[base]]), b"[" * 600 + b"]" * 600]))
    return orjson.dumps({**base, "event_id": ""})


def _is_object(raw: bytes) -> bool:
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False


@pytest.mark.timeout(900)
def test_hostile_input_reconciles_exactly(settings: Settings, worker: Child, rclient: redis.Redis) -> None:
    ns = settings.namespace
    worker.start()
    ledger = Counter()
    valid_events: dict[str, dict[str, object]] = {}

    async def produce_all(values: list[bytes]) -> None:
        p = await start_producer(settings)
        try:
            futs = [await p.send(settings.topic_events, v, key=b"fuzz") for v in values]
            await asyncio.gather(*futs)
        finally:
            await p.stop()

    run(ensure_topics(settings))
    with TestClient(create_app(settings)) as api:

        @hsettings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                   suppress_health_check=list(HealthCheck))
        @given(st.lists(st.one_of(valid().map(lambda e: ("valid", e)), hostile().map(lambda b: ("bad", b))),
                        min_size=BATCH, max_size=BATCH),
               st.lists(st.one_of(valid().map(lambda e: ("valid", e)), hostile().map(lambda b: ("bad", b))),
                        min_size=BATCH, max_size=BATCH),
               st.booleans(), st.booleans())
        def one_round(http_batch: list, kafka_batch: list, repeat_one: bool, pack: bool) -> None:  # type: ignore[type-arg]
            # HTTP path: hostile bytes that are not JSON values cannot be sent inside a JSON array,
            # so those go as their own raw body (and must get a 4xx, not a crash)
            body: list[object] = []
            for kind, x in http_batch:
                if kind == "valid":
                    body.append(x)
                else:
                    try:
                        obj = orjson.loads(x)
                        orjson.dumps([obj])  # deeper than orjson writes inside the batch array: its own body
                        body.append(obj)
                    except orjson.JSONDecodeError:
                        r = api.post("/events", content=x, headers={"content-type": "application/json"})
                        assert r.status_code in (400, 413, 422), r.text
                        ledger["http_refused_bodies"] += 1
                    except TypeError:
                        r = api.post("/events", content=x, headers={"content-type": "application/json"})
                        assert r.status_code == 202 and r.json()["rejected"] == 1, r.text
                        ledger["published"] += 1
                        ledger["http_rejected"] += 1
            if repeat_one and body:
                body.append(body[0])  # a duplicate id inside the batch
            if body:
                r = api.post("/events", content=orjson.dumps(body), headers={"content-type": "application/json"})
                if r.status_code == 413:
                    ledger["http_refused_bodies"] += 1
                else:
                    assert r.status_code == 202, r.text
                    out = r.json()
                    assert out["accepted"] + out["rejected"] == len(body)
                    ledger["published"] += out["accepted"] + out["rejected"]
                    ledger["http_rejected"] += out["rejected"]
                    for e in body:
                        if isinstance(e, dict) and str(e.get("event_id", "")).startswith("v-"):
                            valid_events[str(e["event_id"])] = e
            values = [orjson.dumps(x) if kind == "valid" else x for kind, x in kafka_batch]
            for kind, x in kafka_batch:
                if kind == "valid":
                    valid_events[str(x["event_id"])] = x  # type: ignore[index]
            published = len(values)
            if pack:
                # a batch record: every value that is a JSON object goes in one record, each
                # element applied or dead-lettered on its own; the rest stay single records
                inside = [v for v in values if v[:1] == b"{" and _is_object(v)]
                packed = b"[" + b",".join(inside) + b"]"
                if 1 < len(inside) and len(packed) <= MAX_RECORD_BYTES:
                    values = [v for v in values if not (v[:1] == b"{" and _is_object(v))] + [packed]
            run(produce_all(values))
            ledger["published"] += published

        one_round()

    def totals() -> tuple[int, int, int]:
        st_ = {k: int(v) for k, v in rclient.hgetall(keys.namespaced(ns, keys.STATS)).items()}
        applied = sum(v for k, v in st_.items() if k.startswith("applied:"))
        return applied, st_.get("dead_letters", 0), st_.get("duplicates", 0)

    def reconciled() -> bool:
        a, d, dup = totals()
        return a + d + dup + ledger["http_rejected"] >= ledger["published"]

    moved = {"at": time.monotonic()}
    last = [totals()]  # the totals as they last moved

    def progressing() -> bool:  # False once the totals have not moved for STALL_S (a loss or a stall)
        now, t = time.monotonic(), totals()
        if t != last[0]:
            last[0] = t
            moved["at"] = now
        return now - moved["at"] < STALL_S

    try:
        wait_until(lambda: reconciled() or not progressing(), 300, "every record accounted for", worker)
        assert reconciled(), f"nothing more was accounted for in {STALL_S} s"
    except AssertionError as err:  # say how far the worker got: a stall and a loss look alike otherwise
        metrics = rclient.hgetall(keys.namespaced(ns, keys.worker_metrics(settings.worker_instance)))
        raise AssertionError(f"{err}\napplied, dead letters, duplicates = {totals()}; ledger {dict(ledger)}; "
                             f"worker metrics {metrics}") from None
    applied, dead, dups = totals()
    assert applied + dead + dups + ledger["http_rejected"] == ledger["published"], (applied, dead, dups, ledger)
    assert ledger["published"] >= 10_000
    # every valid event applied exactly once, with the right counts
    by_type = {k[len("applied:"):]: int(v) for k, v in rclient.hgetall(keys.namespaced(ns, keys.STATS)).items()
               if k.startswith("applied:")}
    assert by_type == dict(Counter(str(e["type"]) for e in valid_events.values())), by_type
    want: dict[str, Counter[str]] = {}
    for e in valid_events.values():
        want.setdefault(str(e["item_id"]), Counter())[str(e["type"])] += 1
    for item, c in want.items():
        got = {k: int(v) for k, v in rclient.hgetall(keys.namespaced(ns, keys.item_counts(item))).items()}
        assert got == dict(c), item
    # the dead-letter topic holds one record, with a reason, per refusal of either path
    letters = run(read_topic(settings, settings.topic_dlq, dead + ledger["http_rejected"], timeout=60))
    assert len(letters) == dead + ledger["http_rejected"]
    assert all(orjson.loads(v)["reason"] for v in letters)
    assert worker.alive()
