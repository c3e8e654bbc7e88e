"""Distributed scans: the Celery application, its chunk task, and the Redis-backed politeness.

`mecsa scan FILE --engine celery --broker redis://...` (`submit.py`) cuts the list into chunks and
queues one task per chunk; `mecsa worker` (`worker.py`) runs them, each chunk through the same
asyncio engine as a local scan (`mecsa.scan.engine.run_scan`), into the same store. What must hold
for the whole scan lives in Redis: the per-IP connection leases (`leases.py`), the shared
observation cache (`shared_cache.py`), and the scan's bookkeeping (`bookkeeping.py`: chunks left,
attempts per domain), from which the submitter queues again a chunk whose message was lost
(`redeliver.py`). See docs/scale-out.md.
"""
