"""The packed Lua reads of the request path give the same answers as plain reads, on real Redis,
and the features they assemble equal ``registry.assemble``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import redis.asyncio as aioredis

from schemas.events import Click, Impression, ItemMeta, View
from serving.batch_read import BatchReader
from serving.feature_fetch import FeatureFetcher
from serving.live_read import GenericLiveReader, LuaLiveReader
from streams import keys
from streams.features import keys as fkeys
from streams.features import user, user_category
from streams.features.registry import DEFAULT_CONFIG, all_reads, assemble
from streams.features.replay import apply_events
from streams.store_redis import RedisStore
from streamrec.settings import Settings

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)
ITEMS = ["i0", "i1", "i2", "i3", "m0", "unknown", "i:odd{id}"]


async def _seed(client: aioredis.Redis, ns: str) -> None:
    evs = [ItemMeta(event_id=f"m{i}", ts=NOW - timedelta(days=1), item_id=f"i{i}", categories=[f"c{i % 2}", "x"])
           for i in range(4)]
    evs.append(ItemMeta(event_id="modd", ts=NOW - timedelta(days=1), item_id="i:odd{id}", categories=["c0"]))
    evs += [View(event_id=f"v{j}", ts=NOW - timedelta(minutes=j), user_id="u", item_id=f"i{j % 4}", dwell_ms=900 * j)
            for j in range(12)]
    evs += [Click(event_id="c1", ts=NOW - timedelta(minutes=2), user_id="u", item_id="i2"),
            Impression(event_id="imp1", ts=NOW - timedelta(minutes=1), user_id="u", request_id="r1",
                       model_version="v", item_ids=["i1", "i3"])]
    # a user whose ui hash is larger than 12 fields per candidate: read with HMGET per candidate
    evs += [View(event_id=f"b{j}", ts=NOW - timedelta(minutes=j), user_id="big", item_id=f"x{j}", dwell_ms=1000)
            for j in range(50)]
    evs += [View(event_id="b-i1", ts=NOW - timedelta(minutes=3), user_id="big", item_id="i1", dwell_ms=4000)]
    await apply_events(RedisStore(client, ns), evs)
    # an item known only to the online state (categories in item:{i}:meta), trending and fresh lists
    await client.hset(keys.namespaced(ns, keys.item_meta("m0")), "categories", '["c9"]')
    await client.zadd(keys.namespaced(ns, keys.TRENDING), {i: 10.0 - n for n, i in enumerate(ITEMS[:5])})
    await client.zadd(keys.namespaced(ns, keys.FRESH), {"m0": 2.0, "i3": 1.0})
    await client.zadd(keys.namespaced(ns, keys.user_history("u")), {"i0": 1.0, "i2": 2.0})
    await client.hset(keys.namespaced(ns, keys.CLOCK), "max_event_ts", "123.5")


def test_lua_and_plain_reads_agree_and_features_equal_assemble(settings: Settings) -> None:
    async def main() -> None:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            await _seed(client, settings.namespace)
            reader = BatchReader(client, settings.namespace)
            lua, plain = LuaLiveReader(reader), GenericLiveReader(reader.read)
            assert await client.hlen(keys.namespaced(settings.namespace, fkeys.user_items("big"))) > 12 * len(ITEMS)
            for who in ("u", "nobody", "big"):
                assert await lua.head(who, 3, 5) == await plain.head(who, 3, 5)
                reads = user.reads(who, (), NOW, DEFAULT_CONFIG) + user_category.reads(who, (), NOW, DEFAULT_CONFIG)
                got, ref = await lua.live(reads, ITEMS, who), await plain.live(reads, ITEMS, who)
                assert got == ref
            head = await lua.head("u", 3, 5)
            assert head.history == ["i2", "i0"] and head.trending == ["i0", "i1", "i2"]
            assert head.fresh == ["m0", "i3"] and head.clock == {"max_event_ts": "123.5"}
            again = await lua.head("u", 3, 5)
            assert again.trending is head.trending  # an unchanged trending head: the same list
            assert (await lua.head("u", 2, 5)).trending == ["i0", "i1"] == (await plain.head("u", 2, 5)).trending
            await client.zadd(keys.namespaced(settings.namespace, keys.TRENDING), {"i3": 99.0})
            moved = await lua.head("u", 3, 5)
            assert moved.trending == ["i3", "i0", "i1"] == (await plain.head("u", 3, 5)).trending
            await client.zadd(keys.namespaced(settings.namespace, keys.TRENDING), {"i3": 7.0})  # as seeded
            assert (await lua.live([], ITEMS, "big")).ui == {"i1": (None, "1", (await plain.live([], ["i1"], "big")).ui["i1"][2])}
            store = RedisStore(client, settings.namespace)
            for who in ("u", "big"):
                _, ref_x = assemble(await store.read(all_reads(who, ITEMS, NOW)), who, ITEMS, NOW)
                for ttl in (0.0, 60.0):
                    fetcher = FeatureFetcher(reader.read, item_ttl_s=ttl, live=lua)
                    for _ in range(2):
                        feats = await fetcher.fetch(who, ITEMS, NOW)
                        np.testing.assert_array_equal(feats.matrix, ref_x)
                    # the item-row cache looked up by catalogue row (unknown and odd ids outside the catalogue)
                    catalogue = ("zz", "i3", "i1", "m0", "i0", "i2")
                    rows = np.array([catalogue.index(i) if i in catalogue else -1 for i in ITEMS], dtype=np.int64)
                    for _ in range(2):
                        by_row = await fetcher.fetch(who, ITEMS, NOW, rows=rows, catalogue=catalogue)
                        np.testing.assert_array_equal(by_row.matrix, ref_x)
                        assert by_row.categories == feats.categories
            assert feats.categories == [("c0", "x"), ("c1", "x"), ("c0", "x"), ("c1", "x"), ("c9",), (), ("c0",)]
        finally:
            await client.aclose()

    asyncio.run(main())
