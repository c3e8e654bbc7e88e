"""The cold CLI's early start (issue 20): the critical path's questions go out first, imports follow.

A cold `mecsa assess` used to import everything (the checks, scoring, httpx, cryptography.x509, the
renderers: about 2/3 of a run) before its first DNS packet left. Here the one-shot CLI imports only
the DNS stack, sends the questions the critical path starts from (the MX question, whose reply
starts the chain walk's DS/DNSKEY and the MX hosts' A/AAAA, and the first TXT questions of the
selected checks), and imports the rest in a background thread while the answers are in flight
(the GIL is released while the event loop waits on its sockets). When the transport stack is
imported and the MX set is known, the SMTP sessions start, as the starttls check would start them.
Then `assess()` runs the selected checks on the same `Context`: every question and session asked
early is answered from its memo, so the document is the one a plain `assess()` gives.

Import safety: while the importer thread runs, the event-loop thread imports nothing that is not
already complete (everything the DNS and DNSSEC work needs is imported before the thread starts,
and transport work waits for the transport modules), so two threads never race to initialise one
module; a module the importer is still executing is, in any case, waited for by the import system's
per-module lock, never used half-initialised. tests/unit/test_early.py checks both in a fresh
interpreter.

The library's `assess()` is unchanged and stays in-process; only the CLI's `assess` opts in.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from mecsa.cli import head_start
from mecsa.cli.head_start import MX_CHECKS
from mecsa.dns.resolver import DnsClient, Resolver
from mecsa.observe.context import AssessOptions, Context
from mecsa.observe.mx import observe_mx

if TYPE_CHECKING:
    from mecsa.model import Assessment
    from mecsa.probes.https import Attempt

# The checks that open the SMTP sessions (mecsa.observe.transport.observe_transport).
TRANSPORT_CHECKS = frozenset({"starttls", "x509", "dane"})

# (the checks that ask it first thing, the question's name, its type): each asked early only when
# one of its checks runs, so that an assessment never asks a question it would not have asked
# (the document counts the questions). tests/unit/test_early.py keeps this table true.
FIRST_QUESTIONS: tuple[tuple[frozenset[str], str, str], ...] = (
    (frozenset({"spf", "dnssec"}), "{domain}", "TXT"),
    (frozenset({"dmarc", "dnssec"}), "_dmarc.{domain}", "TXT"),
    (frozenset({"mta-sts"}), "_mta-sts.{domain}", "TXT"),
    (frozenset({"tls-rpt"}), "_smtp._tls.{domain}", "TXT"),
    (frozenset({"dkim"}), "_domainkey.{domain}", "TXT"),
)

# Imported by the background thread, in this order: the transport stack first (the SMTP sessions
# wait for it), then the assessment, scoring and the reports. The selected checks' modules follow.
TRANSPORT_MODULES: tuple[str, ...] = ("mecsa.observe.transport",)
ASSESS_MODULES: tuple[str, ...] = ("mecsa.assess", "mecsa.checks.registry", "mecsa.scoring")
# The record types the early questions' replies and the chain walk carry: dnspython imports a
# type's module when it first parses one, so these are imported before the importer starts, and
# the event-loop thread parses replies without importing anything (see the module docstring).
REPLY_TYPES: tuple[str, ...] = (
    "SOA", "NS", "MX", "TXT", "A", "AAAA", "CNAME", "DNAME", "DNSKEY", "DS", "RRSIG", "NSEC", "NSEC3",
)  # fmt: skip
# Turns of the event loop that put the first questions on the wire (see `assess_early`).
SEND_TURNS = 4
# How long the checks wait for the SMTP connects to go out before they start anyway (seconds).
LAUNCH_WAIT = 0.25


def selected(names: Sequence[str], options: AssessOptions) -> frozenset[str]:
    """The checks of `names` that an assessment with `options` runs (`--only`, less `--skip`)."""
    return head_start.selected(names, options.only, options.skip)


def first_questions(domain: str, checks: Collection[str], options: AssessOptions) -> list[tuple[str, str]]:
    """The (name, type) questions the `checks` ask first, other than the MX question (see above)."""
    out = [
        (name.format(domain=domain), rdtype)
        for owners, name, rdtype in FIRST_QUESTIONS
        if owners & set(checks)
    ]
    if "dkim" in checks:
        # The given selectors are asked in the foreground (the guesses wait: mecsa.checks.dkim).
        out += [
            (f"{s}._domainkey.{domain}", "TXT")
            for s in dict.fromkeys(s.lower() for s in options.dkim_selectors)
        ]
    return out


class Importer:
    """Imports modules in a background thread, in order, and tells when each stage is done.

    `stage(i)` is a future, done when the modules of stage i (and all before it) are imported; an
    import that fails sets its stage's (and every later stage's) exception, which the awaiting
    side re-raises: the same error an in-line import would have raised.
    """

    def __init__(self, stages: Sequence[Sequence[str]]) -> None:
        self._stages = [tuple(s) for s in stages]
        self._done: list[Future[None]] = [Future() for _ in self._stages]
        self._thread = threading.Thread(target=self._run, name="mecsa-importer", daemon=True)

    def start(self) -> Importer:
        self._thread.start()
        return self

    def stage(self, index: int) -> Future[None]:
        return self._done[index]

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        for index, modules in enumerate(self._stages):
            try:
                for module in modules:
                    importlib.import_module(module)
            except BaseException as exc:  # handed to whoever awaits the stage, never lost in the thread
                for later in self._done[index:]:
                    later.set_exception(exc)
                return
            self._done[index].set_result(None)


async def assess_early(
    domain: str,
    client: DnsClient,
    options: AssessOptions,
    check_names: Sequence[str],
    *,
    extra_modules: Sequence[str] = (),
    before_assess: Callable[[], object] | None = None,
    on_stage: Callable[[str], None] | None = None,
    https_attempt: Attempt | None = None,
) -> Assessment:
    """`mecsa.assess.assess(domain, client, options)`, its first questions sent before its imports.

    `check_names` are the registry's check names (read without importing a check); `extra_modules`
    are imported in the background too (the renderer the command will use). `before_assess` runs
    once they are imported, before the checks (the CLI's usage checks that need them). `on_stage`
    is told "questions" (sent), "importing" (the thread starts), "transport" and "imported".
    `https_attempt` makes the MTA-STS policy requests (the CLI's helper process: `Context`).
    """
    report = on_stage or (lambda _stage: None)
    checks = selected(check_names, options)
    ctx = Context(domain, Resolver(client), options, https_attempt=https_attempt)
    started: list[asyncio.Future[Any]] = [asyncio.ensure_future(client.validates())]
    mx_task: asyncio.Future[Any] | None = None
    if checks & MX_CHECKS:
        mx_task = asyncio.ensure_future(observe_mx(ctx))
        started.append(mx_task)
    for name, rdtype in first_questions(domain, checks, options):
        started.append(asyncio.ensure_future(ctx.resolver.resolve(name, rdtype)))
    # A few turns of the loop, so that the tasks above send their questions before anything else
    # runs: the deepest, the MX question, is a lookup task started by the memo's task started by
    # observe_mx's (3 turns; the turns cost microseconds).
    for _ in range(SEND_TURNS):
        await asyncio.sleep(0)
    report("questions")
    if https_attempt is not None and "mta-sts" in checks:
        # The policy requests go to the CLI's helper process, on another core: asked now, they are
        # answered while this process imports, not after its checks start, at the end of the path.
        # (Made here instead, they would import httpx in this thread while the importer runs.)
        from mecsa.observe.mta_sts import txt_then_policy

        started.append(asyncio.ensure_future(txt_then_policy(ctx)))
    _import_loop_needs()
    check_modules = _check_modules(checks)
    report("importing")
    importer = Importer((TRANSPORT_MODULES, (*ASSESS_MODULES, *check_modules, *extra_modules))).start()
    launched: asyncio.Event | None = None
    if mx_task is not None and checks & TRANSPORT_CHECKS:
        launched = asyncio.Event()
        started.append(
            asyncio.ensure_future(_sessions_early(ctx, mx_task, importer.stage(0), launched, report))
        )
    try:
        await asyncio.wrap_future(importer.stage(1))
        if launched is not None:
            # The checks' own start (their tasks, the HTTPS client, the guessed DKIM selectors)
            # costs the loop 20-40 ms of CPU: spent after the SMTP connects went out, it overlaps
            # their round trips instead of delaying the A answer's handling, and so the path.
            # Bounded: a slow MX answer must not hold back the checks that do not need it.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LAUNCH_WAIT):
                    await launched.wait()
    finally:
        # Observations started early are awaited by the checks through the memo; none is left
        # unretrieved (an exception a check never reads would be logged at exit).
        for task in started:
            task.add_done_callback(_retrieve)
    report("imported")
    if before_assess is not None:
        before_assess()
    from mecsa.assess import assess

    return await assess(domain, client, options, context=ctx)


async def _sessions_early(
    ctx: Context,
    mx_task: asyncio.Future[Any],
    transport_imported: Future[None],
    launched: asyncio.Event,
    report: Callable[[str], None],
) -> None:
    """Start the SMTP sessions (and the TLS sweep's early trials) as soon as the MX set is known.

    `launched` is set once their connects are out, or once this failed (the checks then meet
    the same failure through the memo): never left unset.
    """
    try:
        await asyncio.wrap_future(transport_imported)
        report("transport")
        from mecsa.observe.transport import observe_transport

        sessions = asyncio.ensure_future(observe_transport(ctx, await mx_task))
        for _ in range(SEND_TURNS):
            await asyncio.sleep(0)
    finally:
        launched.set()
    await sessions


def _import_loop_needs() -> None:
    """What the event loop's DNS and DNSSEC work imports on first use, imported now (see above)."""
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    for name in REPLY_TYPES:
        dns.rdata.get_rdata_class(dns.rdataclass.IN, dns.rdatatype.from_text(name))  # type: ignore[no-untyped-call]
    # cryptography's OpenSSL backend, which dnspython's first RRSIG check loads
    importlib.import_module("cryptography.hazmat.backends.openssl")
    # The chain walker (dns.dnssec, dns.zone, cryptography's primitives: ~25 ms), which the
    # resolver makes on the first reply it validates: after the first questions, not before.
    importlib.import_module("mecsa.dns.validation.walker")


def _check_modules(checks: Collection[str]) -> tuple[str, ...]:
    from mecsa.checks.registry import CHECK_MODULES

    return tuple(module for name, module in CHECK_MODULES if name in checks)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
