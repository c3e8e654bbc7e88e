"""Assessments the service runs in the background, with their live progress.

A request for a domain gets, in this order: the running job of that domain (two people asking at
once cause one assessment); the stored result, when the domain was assessed within the freshness
window and no authenticated client forces a fresh one; else a new job, if the client's rate limit
and the service's capacity allow it. A job publishes one event per check as it finishes, then one
final event (`done` with the stored assessment's id, `refused`, or `failed`); followers replay the
events so far and then wait for more, which is what the server-sent events stream sends.

A job takes its assessment's permanent id when it starts (reserved.py), so `/report/{id}` shows the
live progress and then the report. The assessment runs in a worker process (pool.py); jobs live in
this process's memory, their results in the store. A finished job is kept for `job_keep_s` so that
an old progress link still finds its way to the report.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from mecsa.scan.assessor import ScanConfig
from mecsa.store import Store
from mecsa.store.records import utc_now
from mecsa.web.limits import SlidingWindow
from mecsa.web.pool import AssessmentPool, WorkerConfig, default_workers
from mecsa.web.reserved import complete, give_reason, reserve
from mecsa.web.settings import ServiceSettings

log = logging.getLogger("mecsa.web.jobs")

FINAL_KINDS = frozenset({"done", "refused", "failed"})
_MAX_KEPT_JOBS = 10_000


class Busy(Exception):
    """The service runs and queues as many assessments as it may."""


class RateLimited(Exception):
    """The client asked for too many new assessments; `retry_after` seconds until the next."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many assessments from this address; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # check | done | refused | failed
    data: dict[str, Any]


@dataclass(eq=False)
class Job:
    token: str
    domain: str
    total_checks: int
    created: float = field(default_factory=time.monotonic)
    state: str = "running"  # running | finished | refused | failed
    events: list[Event] = field(default_factory=list)
    assessment_id: int | None = None
    message: str | None = None
    finished_at: float | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    # set once the permanent id is taken (or could not be): a second asker waits for it
    reserved: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def done(self) -> bool:
        return self.state != "running"

    def publish(self, event: Event) -> None:
        self.events.append(event)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def finish(self, state: str, message: str | None = None, assessment_id: int | None = None) -> None:
        self.state, self.message, self.assessment_id = state, message, assessment_id
        self.finished_at = time.monotonic()
        kind = {"finished": "done", "refused": "refused"}.get(state, "failed")
        data: dict[str, Any] = {"state": state, "message": message}
        if assessment_id is not None:
            data |= {"assessment_id": assessment_id, "report": f"/report/{assessment_id}"}
        self.publish(Event(kind, data))

    async def follow(self, keepalive_s: float = 15.0) -> AsyncIterator[Event | None]:
        """Every event from the first; None now and then while nothing happens (a keep-alive)."""
        seen = 0
        while True:
            changed = self._changed
            while seen < len(self.events):
                event = self.events[seen]
                seen += 1
                yield event
                if event.kind in FINAL_KINDS:
                    return
            try:
                await asyncio.wait_for(changed.wait(), keepalive_s)
            except TimeoutError:
                yield None

    def to_json(self) -> dict[str, Any]:
        checks = [e.data for e in self.events if e.kind == "check"]
        out: dict[str, Any] = {
            "job": self.token,
            "domain": self.domain,
            "state": self.state,
            "checks_done": len(checks),
            "checks_total": self.total_checks,
            "checks": checks,
            "assessment_id": self.assessment_id,
        }
        if self.message is not None:
            out["message"] = self.message
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a request for an assessment got: a job (new or running), or a stored result."""

    job: Job | None = None
    stored_id: int | None = None


class JobRunner:
    """Starts, tracks and bounds the service's assessments; they run in worker processes (pool.py)."""

    def __init__(self, settings: ServiceSettings, store: Store, pool: AssessmentPool | None = None) -> None:
        self.settings = settings
        self.store = store
        workers = settings.assess_workers or default_workers()
        self.pool = pool or AssessmentPool(worker_config(settings), workers)
        self.per_client = SlidingWindow(settings.client_assessments, settings.client_window_s)
        self._slots = asyncio.Semaphore(settings.max_running)
        self._jobs: dict[str, Job] = {}
        self._running: dict[str, Job] = {}  # domain -> its running job
        self._by_id: dict[int, Job] = {}  # assessment id -> its running job
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, token: str) -> Job | None:
        return self._jobs.get(token)

    def running_job(self, assessment_id: int) -> Job | None:
        """The running job whose report will be `assessment_id`."""
        return self._by_id.get(assessment_id)

    @property
    def active(self) -> int:
        return len(self._running)

    async def request(self, domain: str, client_key: str, *, authenticated: bool, force: bool) -> Outcome:
        """The job or stored result for `domain` (already normalised). Raises RateLimited or Busy."""
        force = force and authenticated
        running = self._running.get(domain)
        if running is not None:
            return await self._follow(running)
        if not force:
            stored = await asyncio.to_thread(self._fresh_result, domain)
            if stored is not None:
                return Outcome(stored_id=stored)
            running = self._running.get(domain)  # started while the store was asked
            if running is not None:
                return await self._follow(running)
        if self.active >= self.settings.max_running + self.settings.max_waiting:
            raise Busy("the service is running as many assessments as it can; try again in a minute")
        if not authenticated:
            wait = self.per_client.hit(client_key)
            if wait:
                raise RateLimited(wait)
        return Outcome(job=await self._start(domain))

    @staticmethod
    async def _follow(job: Job) -> Outcome:
        """The running job of another request, once it has its permanent id."""
        await job.reserved.wait()
        if job.assessment_id is None:
            raise RuntimeError(f"the assessment of {job.domain} could not be stored")
        return Outcome(job=job)

    def _fresh_result(self, domain: str) -> int | None:
        if self.settings.fresh_minutes <= 0:
            return None
        latest = self.store.assessments_of_domain(domain, limit=1)
        if not latest or latest[0].is_error:
            return None
        cutoff = utc_now() - dt.timedelta(minutes=self.settings.fresh_minutes)
        return latest[0].id if latest[0].created_at >= cutoff else None

    async def _start(self, domain: str) -> Job:
        from mecsa.checks.registry import CHECKS

        self._forget_old_jobs()
        opts = self.settings.assess_options
        total = sum(1 for c in CHECKS if (not opts.only or c.name in opts.only) and c.name not in opts.skip)
        job = Job(secrets.token_urlsafe(16), domain, total)
        self._running[domain] = job  # before the await: a second request for it follows this job
        try:
            job.assessment_id = await asyncio.to_thread(reserve, self.store, domain)
        except BaseException:
            del self._running[domain]
            raise
        finally:
            job.reserved.set()
        self._jobs[job.token] = job
        self._by_id[job.assessment_id] = job
        task = asyncio.create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def _forget_old_jobs(self) -> None:
        now = time.monotonic()
        for token, job in list(self._jobs.items()):
            old = job.finished_at is not None and now - job.finished_at > self.settings.job_keep_s
            if old or (job.done and len(self._jobs) > _MAX_KEPT_JOBS):
                del self._jobs[token]

    async def _run(self, job: Job) -> None:
        assert job.assessment_id is not None
        try:
            async with self._slots:
                await self._assess(job, job.assessment_id)
        except Exception:  # never lost silently: the job says it failed, the log says why
            log.exception("the assessment of %s failed", job.domain)
            await self._end(job, "failed", "the assessment failed with an internal error")
        finally:
            if self._running.get(job.domain) is job:
                del self._running[job.domain]
            self._by_id.pop(job.assessment_id, None)
            if not job.done:  # cancelled: the service stops, and the placeholder says so
                job.finish("failed", "the assessment was stopped")

    async def _assess(self, job: Job, assessment_id: int) -> None:
        def progress(data: dict[str, Any]) -> None:
            job.publish(Event("check", data))

        made, refusal = await self.pool.assess(job.domain, job.total_checks, progress)
        if refusal is not None or made is None:
            await self._end(job, "refused", refusal or "refused")
            return
        await asyncio.to_thread(complete, self.store, assessment_id, *made)
        job.finish("finished", assessment_id=assessment_id)

    async def _end(self, job: Job, state: str, message: str) -> None:
        """A job without a report: its permanent id keeps the reason."""
        assert job.assessment_id is not None
        try:
            await asyncio.to_thread(give_reason, self.store, job.assessment_id, job.domain, message)
        finally:
            job.finish(state, message, assessment_id=job.assessment_id)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pool.close()


def worker_config(settings: ServiceSettings) -> WorkerConfig:
    """What the worker processes need of the service's settings."""
    scan = ScanConfig(
        options=settings.assess_options,
        profile=settings.profile,
        resolvers=settings.resolvers,
        dns_timeout=settings.dns_timeout,
    )
    return WorkerConfig(scan, allow_private=settings.allow_private)
