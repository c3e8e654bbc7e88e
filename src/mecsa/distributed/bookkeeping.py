"""A distributed scan's bookkeeping in Redis: chunks left, attempts per domain, counters, the end.

Keys, under `<prefix>:scan:<id>:`:

- `chunks` (set): ids of the chunks queued and not yet finished; `seq`: the last chunk id given;
- `payloads` (hash, chunk id -> the task's arguments as JSON): what was queued for each chunk not
  yet finished, so that a chunk whose message was lost can be sent again (`redeliver.py`);
- `submitted`: set once every chunk of the list is queued, so that "no chunk left" means "done";
- `cancelled`: the submitter was interrupted (Ctrl-C): workers drop the chunks they receive;
- `attempts` (hash, domain -> N): how often an assessment of the domain was started;
- `stats` (hash): observations asked for and probed, summed over the chunks;
- `chunk:<k>:running`: the lease of the worker running chunk k, so that a second delivery of the
  same chunk (the visibility timeout passed while it ran) waits instead of running beside it.

The store stays the record of what is done: a domain counts as done when its result is stored.
Redis only says what is queued and what was tried, and keeps 7 days (`KEEP_S`) after a scan ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

KEEP_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class ScanKeys:
    scan_id: int
    prefix: str = "mecsa"

    def key(self, name: str) -> str:
        return f"{self.prefix}:scan:{self.scan_id}:{name}"

    @property
    def chunks(self) -> str:
        return self.key("chunks")

    @property
    def payloads(self) -> str:
        return self.key("payloads")

    @property
    def seq(self) -> str:
        return self.key("seq")

    @property
    def submitted(self) -> str:
        return self.key("submitted")

    @property
    def cancelled(self) -> str:
        return self.key("cancelled")

    @property
    def attempts(self) -> str:
        return self.key("attempts")

    @property
    def stats(self) -> str:
        return self.key("stats")

    def running(self, chunk_id: int) -> str:
        return self.key(f"chunk:{chunk_id}:running")

    def all(self) -> tuple[str, ...]:
        return (
            self.chunks, self.payloads, self.seq, self.submitted, self.cancelled, self.attempts, self.stats,
        )  # fmt: skip


# KEYS: chunks, submitted, payloads. ARGV: chunk id. The chunks left, and whether the list is all queued.
_FINISH_CHUNK = """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return {redis.call('SCARD', KEYS[1]), redis.call('EXISTS', KEYS[2])}
"""


async def chunk_queued(redis: Redis, keys: ScanKeys, chunk_id: int, payload: str) -> None:
    """Record a chunk as queued, with its task's arguments (JSON) for a redelivery."""
    pipe = redis.pipeline(transaction=True)
    pipe.sadd(keys.chunks, chunk_id)
    pipe.hset(keys.payloads, str(chunk_id), payload)
    await pipe.execute()


async def chunk_done(redis: Redis, keys: ScanKeys, chunk_id: int) -> bool:
    """Mark the chunk finished; True when it was the scan's last one."""
    left, submitted = await redis.register_script(_FINISH_CHUNK)(
        keys=[keys.chunks, keys.submitted, keys.payloads], args=[chunk_id]
    )
    return int(left) == 0 and int(submitted) == 1


async def progress(redis: Redis, keys: ScanKeys) -> tuple[int, bool]:
    """(chunks left, every chunk queued)."""
    pipe = redis.pipeline(transaction=False)
    pipe.scard(keys.chunks)
    pipe.exists(keys.submitted)
    left, submitted = await pipe.execute()
    return int(left), bool(submitted)


async def keep_for_a_while(redis: Redis, keys: ScanKeys) -> None:
    """The scan has ended: its keys expire in `KEEP_S` (status and a late --resume can still read them)."""
    pipe = redis.pipeline(transaction=False)
    for key in keys.all():
        pipe.expire(key, KEEP_S)
    await pipe.execute()
