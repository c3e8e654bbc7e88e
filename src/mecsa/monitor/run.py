"""One monitor pass (`mecsa monitor run`) and the scheduler (`mecsa monitor daemon`).

A pass assesses the watched domains that are due (all of them with `force`), concurrently through
one scanner `Assessor`: the scan's per-IP connection limits and shared observations, so domains
that share an MX host cause one probe of it. Each new assessment is stored; the alert rules compare
it with the domain's earlier stored assessments; then each notifier is sent, per domain, what it
has not been told yet (within its hourly limit: what is held back goes out on a later pass).

With `reports = true` in the watch list, each assessed domain's ingested DMARC and TLS reports are
read too (`report_rules`): an unknown sending source and a TLS failure rate above the threshold
are alerts like the others, through the same notifiers, de-duplicated and resolved alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mecsa.monitor.alert import Alert
from mecsa.monitor.notify import Notice, Notifier, NotifyError, build_notifiers
from mecsa.monitor.rules import evaluate
from mecsa.monitor.state import alerts as stored_alerts
from mecsa.monitor.state import (
    mark_told,
    pending,
    record_alerts,
    sent_in_last_hour,
    set_watch_state,
    watch_states,
)
from mecsa.monitor.watchlist import AssessSettings, WatchedDomain, WatchList
from mecsa.store import NewResult, Store

if TYPE_CHECKING:
    from mecsa.dns.resolver import DnsClient

log = logging.getLogger(__name__)
HISTORY = 20  # earlier assessments the rules may look back on (the key DANE last matched)
CONCURRENCY = 20

AssessFn = Callable[[str], Awaitable[dict[str, Any]]]
# (domain, its new assessment document, now) -> the report alerts of the domain now
ReportCheckFn = Callable[[str, dict[str, Any], dt.datetime], Awaitable[list[Alert]]]


@dataclass(frozen=True, slots=True)
class DomainOutcome:
    domain: str
    assessment_id: int | None
    alerts: tuple[Alert, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PassResult:
    outcomes: tuple[DomainOutcome, ...]
    open_alerts: int  # open conditions of the watched domains after the pass
    events: int  # events raised by this pass
    sent: Mapping[str, int] = field(default_factory=dict)  # notifier -> messages sent
    held: Mapping[str, int] = field(default_factory=dict)  # notifier -> messages held by the rate limit
    errors: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0: all is well; 1: an alert holds or was raised; 2: something could not be done."""
        if self.errors:
            return 2
        return 1 if self.open_alerts or self.events else 0


def due(watchlist: WatchList, store: Store, now: dt.datetime, force: bool = False) -> list[WatchedDomain]:
    states = watch_states(store)
    out = []
    for w in watchlist.domains:
        last = states[w.name].last_run_at if w.name in states else None
        if force or last is None or (now - last).total_seconds() >= w.interval_s:
            out.append(w)
    return out


def next_due(watchlist: WatchList, store: Store, now: dt.datetime) -> dt.datetime:
    states = watch_states(store)
    times = []
    for w in watchlist.domains:
        last = states[w.name].last_run_at if w.name in states else None
        times.append(now if last is None else last + dt.timedelta(seconds=w.interval_s))
    return min(times, default=now + dt.timedelta(hours=1))


def scanner_assess(settings: AssessSettings) -> AssessFn:
    """Assess through one scanner Assessor: its DNS client, per-IP limits and observation cache."""
    from mecsa.assess import assess
    from mecsa.observe import AssessOptions
    from mecsa.report.json import assessment_to_json
    from mecsa.scan.assessor import Assessor, ScanConfig

    options = AssessOptions(
        dkim_selectors=settings.dkim_selectors,
        ca_file=settings.ca_file,
        smtp_timeout=settings.smtp_timeout,
        smtp_port=settings.smtp_port,
    )
    config = ScanConfig(options, settings.profile, settings.resolvers, settings.timeout)
    assessor = Assessor(config, scan_id=0)

    async def one(domain: str) -> dict[str, Any]:
        assessment = await assess(domain, assessor.client, options, shared=assessor.shared)
        return assessment_to_json(assessment, settings.profile)

    return one


async def run_pass(
    watchlist: WatchList,
    store: Store,
    *,
    assess: AssessFn | None = None,
    notifiers: Mapping[str, Notifier] | None = None,
    now: dt.datetime | None = None,
    force: bool = False,
    report_check: ReportCheckFn | None = None,
) -> PassResult:
    """Assess what is due, update the alerts, notify. Never raises for one domain's trouble.

    `report_check` reads the domains' ingested reports (default: `reports_check` over this store,
    when the watch list asks for report alerts)."""
    now = now or dt.datetime.now(dt.UTC)
    assess = assess or scanner_assess(watchlist.assess)
    if report_check is None and any(w.reports for w in watchlist.domains):
        report_check = reports_check(watchlist, store)
    errors: list[str] = []
    if notifiers is None:
        try:
            notifiers = build_notifiers(list(watchlist.notifiers.values()))
        except NotifyError as exc:
            return PassResult((), 0, 0, errors=(str(exc),))
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(w: WatchedDomain) -> DomainOutcome:
        async with gate:
            return await _assess_one(w, watchlist, store, assess, now, report_check)

    outcomes = tuple(await asyncio.gather(*(one(w) for w in due(watchlist, store, now, force))))
    errors += [f"{o.domain}: {o.error}" for o in outcomes if o.error]
    sent: dict[str, int] = {}
    held: dict[str, int] = {}
    for w in watchlist.domains:  # every watched domain: messages held back earlier go out now
        for name in w.notify:
            items = pending(store, w.name, name, now)
            if not items:
                continue
            config = watchlist.notifiers[name]
            if sent_in_last_hour(store, name, now) >= config.max_per_hour:
                held[name] = held.get(name, 0) + 1
                continue
            try:
                await notifiers[name].send(Notice(w.name, tuple(items), now))
            except NotifyError as exc:
                errors.append(str(exc))
                continue
            mark_told(store, name, items, now)
            sent[name] = sent.get(name, 0) + 1
    watched = {w.name for w in watchlist.domains}
    open_count = sum(
        1 for a in stored_alerts(store, state="open", limit=100_000) if a.alert.domain in watched
    )
    events = sum(1 for o in outcomes for a in o.alerts if a.kind.value == "event")
    return PassResult(outcomes, open_count, events, sent, held, tuple(errors))


async def _assess_one(
    watched: WatchedDomain,
    watchlist: WatchList,
    store: Store,
    assess: AssessFn,
    now: dt.datetime,
    report_check: ReportCheckFn | None = None,
) -> DomainOutcome:
    domain = watched.name
    earlier = [s.document() for s in store.assessments_of_domain(domain, HISTORY) if not s.is_error]
    try:
        document = await assess(domain)
    except Exception as exc:  # one domain's crash must not sink the pass; it is reported, exit 2
        log.debug("assessment of %s failed", domain, exc_info=True)
        reason = f"the assessment failed: {type(exc).__name__}: {exc}"
        set_watch_state(store, domain, now, None, reason)
        return DomainOutcome(domain, None, error=reason)
    assessment_id = store.add_result(None, NewResult.from_document(document))
    found = evaluate(document, earlier, watchlist.rules)
    report_error = None
    if watched.reports and report_check is not None:
        try:
            found += await report_check(domain, document, now)
        except Exception as exc:  # the reports could not be read: keep their alerts as they were
            log.debug("report alerts of %s failed", domain, exc_info=True)
            report_error = f"the report alerts failed: {type(exc).__name__}: {exc}"
            found += _open_report_alerts(store, domain)
    record_alerts(store, domain, found, assessment_id, now)
    set_watch_state(store, domain, now, assessment_id, report_error)
    return DomainOutcome(domain, assessment_id, tuple(found), report_error)


def _open_report_alerts(store: Store, domain: str) -> list[Alert]:
    from mecsa.monitor.report_rules import REPORT_RULES

    return [a.alert for a in stored_alerts(store, domain, "open", 10_000) if a.alert.rule in REPORT_RULES]


def reports_check(watchlist: WatchList, store: Store, client: DnsClient | None = None) -> ReportCheckFn:
    """Report alerts from the reports ingested into `store` (`mecsa reports ingest --store`).

    SPF questions go through `client` (default: one made from the watch list's [assess] resolvers).
    """
    from mecsa.dns.resolver import DnsClient, Resolver, parse_nameserver
    from mecsa.monitor.report_rules import report_alerts
    from mecsa.reports.events import report_conditions
    from mecsa.reports.storage import ReportStore
    from mecsa.spf.evaluator import fetch_record

    settings = watchlist.reports
    reports = ReportStore(store.engine)
    made: list[DnsClient] = [client] if client is not None else []

    async def check(domain: str, document: dict[str, Any], now: dt.datetime) -> list[Alert]:
        if not made:  # made on first use, in the loop that runs the pass
            servers = [parse_nameserver(r) for r in watchlist.assess.resolvers]
            made.append(DnsClient(servers or None, timeout=watchlist.assess.timeout))
        since = now - dt.timedelta(seconds=settings.window_s)
        found = await report_conditions(reports, made[0], domain, since, settings.tls_failure_threshold)
        spf_record = None
        if found.unknown_sources:
            fetched = await fetch_record(Resolver(made[0]), domain)
            spf_record = fetched.spf_texts[0] if len(fetched.spf_texts) == 1 else None
        return report_alerts(found, document, spf_record, _open_report_alerts(store, domain))

    return check


async def run_daemon(
    watchlist: WatchList,
    store: Store,
    stop: asyncio.Event,
    *,
    on_pass: Callable[[PassResult], None] | None = None,
    assess: AssessFn | None = None,
    max_sleep_s: float = 300.0,
) -> None:
    """Run passes as domains fall due until `stop` is set (the web service runs this in-process)."""
    while not stop.is_set():
        result = await run_pass(watchlist, store, assess=assess)
        if on_pass is not None:
            on_pass(result)
        now = dt.datetime.now(dt.UTC)
        wait = (next_due(watchlist, store, now) - now).total_seconds()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=min(max(wait, 1.0), max_sleep_s))


def summary_lines(result: PassResult) -> Sequence[str]:
    """For stderr: what the pass did, one line each."""
    lines = [
        f"mecsa monitor: assessed {len(result.outcomes)} domain(s); {result.open_alerts} open alert(s),"
        f" {result.events} change(s); messages sent: "
        + (", ".join(f"{k} {v}" for k, v in sorted(result.sent.items())) or "none")
    ]
    lines += [
        f"mecsa monitor: rate limit reached, held back for {k}: {v} message(s)"
        for k, v in result.held.items()
    ]
    lines += [f"mecsa monitor: error: {e}" for e in result.errors]
    return lines
