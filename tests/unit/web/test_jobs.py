"""The job runner: one job per domain however many ask at once, each with its permanent id at once."""

from __future__ import annotations

import asyncio

from mecsa.dns.zoneserver import ThreadedZoneServer
from mecsa.store import Store
from mecsa.web.jobs import Job, JobRunner
from tests.unit.web.service import settings_for


async def test_requests_at_once_for_a_domain_share_one_job_that_has_its_permanent_id(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    runner = JobRunner(settings_for(zones), sqlite_store)

    async def ask(client: str) -> tuple[Job, int | None]:
        outcome = await runner.request("nomx.web.test", client, authenticated=False, force=False)
        assert outcome.job is not None
        return outcome.job, outcome.job.assessment_id  # the id as the asker gets it, not later

    try:
        answers = await asyncio.gather(*(ask(f"client-{i}") for i in range(3)))
        job = answers[0][0]
        assert all(j is job for j, _ in answers)
        ids = {i for _, i in answers}
        assert len(ids) == 1 and None not in ids
        async for event in job.follow():
            if event is not None and event.kind != "check":
                assert event.kind == "done", event
    finally:
        await runner.close()
    stored = sqlite_store.assessments_of_domain("nomx.web.test")
    assert [s.id for s in stored] == list(ids) and not stored[0].is_error
