"""Per-IP SMTP connection slots shared by every worker of a distributed scan, held as leases in Redis.

The same two rules as `mecsa.scan.politeness.PoliteLimits`, enforced for the whole cluster:

- at most `per_address` simultaneous SMTP connections per IP address;
- new connections to one address start at least `1 / rate` seconds apart.

Each held slot is a member of a sorted set per address (`<prefix>:ip:<address>:leases`) whose score
is the lease's expiry in the Redis server's clock (`TIME`: worker clocks may disagree). The holder
renews its leases every `lease_s / 3` seconds; a worker that crashes stops renewing, and its slots
are free again `lease_s` seconds later at most, so no crash holds a slot for ever. Acquisition is one
Lua script (atomic on the server): drop expired leases, count, check the pace, add the lease.

A waiter polls (the script says how long the pace still forbids a start); there is no queue, so
waiters are served in no particular order, which politeness does not need.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import uuid
from typing import TYPE_CHECKING, Any, Literal

from mecsa.distributed.redisconn import REDIS_DOWN
from mecsa.probes.smtp import PER_ADDRESS_CONNECTIONS, ConnectionLimits

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 15.0
DEFAULT_RATE = 5.0
POLL_S = 0.05  # how often a waiter for a full address asks again

# KEYS: leases, pace. ARGV: token, limit, lease ms, interval ms.
# Returns 0 when the lease is taken, N > 0: ms until the pace allows a start, -1: every slot is held.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, lease, interval = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then
  return -1
end
local last = redis.call('GET', KEYS[2])
if last and now < tonumber(last) + interval then
  return tonumber(last) + interval - now
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * lease)
redis.call('SET', KEYS[2], now, 'PX', math.max(interval, 1000))
return 0
"""

# KEYS: leases. ARGV: token, lease ms. 1 when renewed, 0 when the lease had already gone.
_RENEW = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return 1
"""


def address_key(address: str) -> str:
    try:
        return ipaddress.ip_address(address).compressed
    except ValueError:
        return address


class LeasedSlot(asyncio.Semaphore):
    """One address's slot as the SMTP probe sees it (`async with slot:`); Redis does the counting."""

    def __init__(self, limits: RedisLimits, address: str) -> None:
        super().__init__(1_000_000)  # never limits by itself
        self.limits = limits
        self.address = address
        self._tokens: list[str] = []  # this process's leases on the address, through this slot

    async def acquire(self) -> Literal[True]:
        self._tokens.append(await self.limits.lease(self.address))
        return True

    def release(self) -> None:
        if self._tokens:
            self.limits.give_back(self.address, self._tokens.pop())


class RedisLimits(ConnectionLimits):
    """`ConnectionLimits` for one worker process, counted cluster-wide in Redis (see the module doc)."""

    def __init__(
        self,
        redis: Redis,
        per_address: int = PER_ADDRESS_CONNECTIONS,
        rate: float = DEFAULT_RATE,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        prefix: str = "mecsa",
    ) -> None:
        if per_address < 1 or rate <= 0 or lease_s <= 0:
            raise ValueError("per_address must be at least 1, rate and lease_s positive")
        super().__init__(per_address)
        self.redis = redis
        self.rate = rate
        self.lease_ms = max(1, int(lease_s * 1000))
        self.prefix = prefix
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._leased: dict[str, LeasedSlot] = {}
        self._held: dict[str, str] = {}  # token -> its sorted set: what the renewer keeps alive
        self._renewer: asyncio.Task[None] | None = None
        self._releases: set[asyncio.Task[Any]] = set()
        self.lost = 0  # leases found expired while held (the process stalled past the lease)

    def slot(self, address: str) -> asyncio.Semaphore:
        key = address_key(address)
        found = self._leased.get(key)
        if found is None:
            found = self._leased[key] = LeasedSlot(self, key)
        return found

    def keys(self, address: str) -> tuple[str, str]:
        base = f"{self.prefix}:ip:{address_key(address)}"
        return f"{base}:leases", f"{base}:pace"

    async def lease(self, address: str) -> str:
        """Wait for a slot on `address` and the pace's permission; the lease's token."""
        token = uuid.uuid4().hex
        leases, pace = self.keys(address)
        interval_ms = max(1, int(1000 / self.rate))
        down_since: float | None = None
        warned = False
        loop = asyncio.get_running_loop()
        while True:
            try:
                answer = int(
                    await self._acquire(
                        keys=[leases, pace], args=[token, self.per_address, self.lease_ms, interval_ms]
                    )
                )
            except asyncio.CancelledError:
                self._remove_later(leases, token)  # the script may have run: never leave the lease
                raise
            except REDIS_DOWN as exc:
                # Redis restarting: wait for it rather than connect unmetered, or fail the domain
                # for what is our own infrastructure's fault (an SMTP slot's wait has no bound anyway).
                if down_since is None:
                    down_since = loop.time()
                elif loop.time() - down_since > 10 and not warned:
                    log.warning("Redis unreachable, connections to %s wait: %s", address, exc)
                    warned = True
                await asyncio.sleep(0.5)
                continue
            down_since, warned = None, False
            if answer == 0:
                self._held[token] = leases
                self._start_renewer()
                return token
            wait = answer / 1000 if answer > 0 else POLL_S
            await asyncio.sleep(wait * random.uniform(1.0, 1.2))  # jitter: waiters do not ask in step

    def give_back(self, address: str, token: str) -> None:
        leases = self._held.pop(token, None)
        if leases is not None:
            self._remove_later(leases, token)

    def _remove_later(self, leases: str, token: str) -> None:
        # `Semaphore.release` is synchronous: the removal runs as a task of its own.
        task = asyncio.ensure_future(self._remove(leases, token))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _remove(self, leases: str, token: str) -> None:
        with contextlib.suppress(*REDIS_DOWN):
            await self.redis.zrem(leases, token)  # else the lease simply expires

    def _start_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.ensure_future(self._renew_forever())

    async def _renew_forever(self) -> None:
        while self._held:
            await asyncio.sleep(self.lease_ms / 3000)
            for token, leases in list(self._held.items()):
                try:
                    renewed = await self._renew(keys=[leases], args=[token, self.lease_ms])
                except REDIS_DOWN as exc:
                    log.warning("cannot renew a connection lease: %s", exc)
                    break
                if not renewed and token in self._held:
                    self.lost += 1
                    log.warning("a connection lease on %s expired while held", leases)

    async def close(self) -> None:
        """Hand back every lease still held and stop renewing (the end of a chunk)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        for token, leases in list(self._held.items()):
            self._remove_later(leases, token)
        self._held.clear()
        await self.settled()

    async def settled(self) -> None:
        """Wait until every lease handed back so far is gone from Redis (its removal is a task)."""
        if self._releases:
            await asyncio.gather(*self._releases, return_exceptions=True)
