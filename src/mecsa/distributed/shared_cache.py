"""The (kind, MX name, IP, port) observation cache of a distributed scan, shared by its workers in Redis.

In front sits this process's own `ObservationCache` (one task per key, shared by the domains of the
process). On its miss the key is looked up in Redis, under the scan's namespace, by one Lua script:

- the observation is there (within its TTL): unpickle it;
- nobody has it: take the claim (`SET NX` with a short expiry, renewed while probing), probe,
  publish the pickled observation with the TTL, drop the claim;
- another worker holds the claim: wait for its result instead of probing again. If the claim
  disappears without a result (the probe raised, or its worker died and the claim expired), the
  waiter probes for itself (and publishes what it finds): a failed probe is not cached, as in
  `ObservationCache`.

Observations are frozen dataclasses and travel pickled. Unpickling runs code named by the data, so
the Redis of a scan must be trusted as much as the workers themselves (docs/scale-out.md).
Should Redis be unreachable, the worker probes for itself: nothing is shared meanwhile, but the
connection leases still hold (they wait for Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mecsa.distributed.redisconn import REDIS_DOWN
from mecsa.observe import ObservationCache
from mecsa.observe.cache import DEFAULT_TTL_S, CacheKey

if TYPE_CHECKING:
    from redis.asyncio import Redis

T = TypeVar("T")
CLAIM_S = 15.0  # a claim's expiry; renewed every third of it while its probe runs
POLL_S = 0.05

# KEYS: data, claim. ARGV: token, claim ms. {0, data} | {1} the claim is ours | {2} another's claim.
_CLAIM = """
local data = redis.call('GET', KEYS[1])
if data then
  return {0, data}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then
  return {1}
end
return {2}
"""

# KEYS: data, claim. {0, data} | {2} still claimed | {3} neither: the claimant gave up.
_POLL = """
local data = redis.call('GET', KEYS[1])
if data then
  return {0, data}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {2}
end
return {3}
"""

# KEYS: claim. ARGV: token, claim ms (renew) — or token alone (drop). Only the holder's own token.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] then
    return redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  end
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisObservationCache(ObservationCache):
    """This process's cache, backed by the scan-wide claim table and store in Redis."""

    def __init__(
        self, redis: Redis, scan_id: int, *, ttl_s: float = DEFAULT_TTL_S, prefix: str = "mecsa"
    ) -> None:
        super().__init__(ttl_s=ttl_s)
        self.redis = redis
        self.namespace = f"{prefix}:scan:{scan_id}:obs"
        self._claim = redis.register_script(_CLAIM)
        self._poll = redis.register_script(_POLL)
        self._renew = redis.register_script(_RENEW)
        self.probes = 0  # observations this process made itself (claims won, or fallbacks)
        self.shared_hits = 0  # observations another worker made

    def keys(self, key: CacheKey) -> tuple[str, str]:
        name = json.dumps(list(key), separators=(",", ":"))
        return f"{self.namespace}:{name}:data", f"{self.namespace}:{name}:claim"

    async def get(self, key: CacheKey, make: Callable[[], Awaitable[T]]) -> T:
        return await super().get(key, lambda: self._shared(key, make))

    async def _shared(self, key: CacheKey, make: Callable[[], Awaitable[T]]) -> T:
        data_key, claim_key = self.keys(key)
        token = uuid.uuid4().hex
        claim_ms = int(CLAIM_S * 1000)
        try:
            answer: list[Any] = await self._claim(keys=[data_key, claim_key], args=[token, claim_ms])
        except REDIS_DOWN:
            return await self._alone(make)
        if answer[0] == 0:
            loaded: T = self._loaded(answer[1])
            return loaded
        if answer[0] == 2:
            found = await self._wait(data_key, claim_key)
            if found is not None:
                shared: T = self._loaded(found)
                return shared
            # The claimant failed: probe for ourselves, and share what we find.
            return await self._probe_unclaimed(make, data_key)
        return await self._probe_claimed(make, data_key, claim_key, token, claim_ms)

    def _loaded(self, data: bytes) -> Any:
        self.shared_hits += 1
        return pickle.loads(data)  # a trusted Redis only (module docstring)

    async def _alone(self, make: Callable[[], Awaitable[T]]) -> T:
        self.probes += 1
        return await make()

    async def _probe_unclaimed(self, make: Callable[[], Awaitable[T]], data_key: str) -> T:
        value = await self._alone(make)
        await self._publish(data_key, None, value)
        return value

    async def _publish(self, data_key: str, claim_key: str | None, value: object) -> None:
        try:
            data = pickle.dumps(value)
        except Exception:  # not picklable: nothing to share
            data = None
        with contextlib.suppress(*REDIS_DOWN):
            pipe = self.redis.pipeline(transaction=True)
            if data is not None:
                pipe.set(data_key, data, px=max(1, int(self.ttl_s * 1000)))
            if claim_key is not None:
                pipe.delete(claim_key)
            await pipe.execute()

    async def _wait(self, data_key: str, claim_key: str) -> bytes | None:
        """The claimant's observation once it is published; None when its claim went without one."""
        while True:
            await asyncio.sleep(POLL_S)
            try:
                answer: list[Any] = await self._poll(keys=[data_key, claim_key])
            except REDIS_DOWN:
                return None
            if answer[0] == 0:
                data: bytes = answer[1]
                return data
            if answer[0] == 3:
                return None

    async def _probe_claimed(
        self, make: Callable[[], Awaitable[T]], data_key: str, claim_key: str, token: str, claim_ms: int
    ) -> T:
        self.probes += 1
        keeper = asyncio.ensure_future(self._keep_claim(claim_key, token, claim_ms))
        try:
            value = await make()
        except BaseException:
            keeper.cancel()
            await self._drop_claim(claim_key, token)  # the waiters then probe for themselves
            raise
        keeper.cancel()
        await self._publish(data_key, claim_key, value)
        return value

    async def _keep_claim(self, claim_key: str, token: str, claim_ms: int) -> None:
        while True:
            await asyncio.sleep(claim_ms / 3000)
            with contextlib.suppress(*REDIS_DOWN):
                await self._renew(keys=[claim_key], args=[token, claim_ms])

    async def _drop_claim(self, claim_key: str, token: str) -> None:
        with contextlib.suppress(*REDIS_DOWN):
            await self._renew(keys=[claim_key], args=[token])
