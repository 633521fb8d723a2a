"""``streamrec state digest|stats``."""

from __future__ import annotations

import redis.asyncio as aioredis
import redis.exceptions as rexc

from streams import keys
from streams.digest import digest_items
from streams.store_redis import RedisStore
from streamrec.errors import ServiceUnavailable
from streamrec.settings import Settings


def _unreachable(s: Settings, err: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"cannot reach Redis at {s.redis_url}: start it with `streamrec dev up` or set STREAMREC_REDIS_URL ({err})"
    )


async def digest(s: Settings, namespace: str | None) -> str:
    client = aioredis.Redis.from_url(s.redis_url, socket_connect_timeout=3)
    try:
        store = RedisStore(client, namespace or s.namespace, follow_live=namespace is None)
        ns = await store.resolve()
        return digest_items(await store.dump(ns))
    except (rexc.ConnectionError, rexc.TimeoutError, ConnectionError) as err:
        raise _unreachable(s, err) from err
    finally:
        await client.aclose()


async def stats(s: Settings, namespace: str | None) -> dict[str, int | str]:
    client = aioredis.Redis.from_url(s.redis_url, socket_connect_timeout=3, decode_responses=True)
    try:
        store = RedisStore(client, namespace or s.namespace, follow_live=namespace is None)
        ns = await store.resolve()
        raw = await client.hgetall(keys.namespaced(ns, keys.STATS))
        out: dict[str, int | str] = {k: int(v) for k, v in raw.items()}
        out["namespace"] = ns
        out["events_applied"] = sum(int(v) for k, v in raw.items() if k.startswith("applied:"))
        out["trending_items"] = int(await client.zcard(keys.namespaced(ns, keys.TRENDING)))
        return out
    except (rexc.ConnectionError, rexc.TimeoutError, ConnectionError) as err:
        raise _unreachable(s, err) from err
    finally:
        await client.aclose()
