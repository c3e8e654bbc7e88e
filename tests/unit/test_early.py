"""The cold CLI's early start (mecsa.cli.early): the same document, the checks' questions, safe imports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from typing import Any

import click
import pytest

from mecsa.assess import assess
from mecsa.checks.registry import check_names
from mecsa.cli.early import LAUNCH_WAIT, Importer, assess_early, first_questions
from mecsa.cli.head_start import MX_CHECKS
from mecsa.dns.resolver import Resolver
from mecsa.dns.zoneserver import Fault, ThreadedZoneServer, ZoneData
from mecsa.observe import AssessOptions, Context
from mecsa.report.json import assessment_to_json
from tests.conftest import ServeZones

DOMAIN = "example.test"
ZONE = (
    "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
    "@ IN MX 10 mx1\nmx1 IN A 127.0.0.25\n"
    '@ IN TXT "v=spf1 mx -all"\n'
    '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:d@example.test"\n'
    '_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tls@example.test"\n'
    '_mta-sts IN TXT "v=STSv1; id=20240101"\n'
    'sel._domainkey IN TXT "v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC1"\n'
)
# The transport checks meet a closed port on loopback: fast errors, no waiting.
OPTIONS = AssessOptions(dkim_selectors=("sel",), smtp_timeout=2.0, check_deadline=20.0)
TIMINGS = ("elapsed_s", "duration_s", "checked_at")


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.mark.parametrize("check", check_names())
async def test_each_early_question_is_one_its_check_asks(serve_zones: ServeZones, check: str) -> None:
    """An early question a check would not ask would change the document's question count."""
    # An SPF record without an mx term: only the MX checks may ask for the MX set.
    client = await serve_zones({f"{DOMAIN}.": ZONE.replace("v=spf1 mx -all", "v=spf1 ip4:192.0.2.1 -all")})
    options = replace(OPTIONS, only=frozenset({check}))
    ctx = Context(DOMAIN, Resolver(client), options)
    await assess(DOMAIN, client, options, context=ctx)
    asked = set(ctx.resolver._cache)
    early = {(name.lower(), kind) for name, kind in first_questions(DOMAIN, {check}, options)}
    if check in MX_CHECKS:
        early.add((DOMAIN, "MX"))
    else:
        assert (DOMAIN, "MX") not in asked  # the table must not be wider than the checks either
    assert early <= asked, f"{check} does not ask {sorted(early - asked)}"


@pytest.mark.parametrize(
    "options",
    [
        OPTIONS,
        replace(OPTIONS, only=frozenset({"dmarc", "spf", "dkim"})),
        replace(OPTIONS, tls_versions=False),
    ],
    ids=["all", "only-records", "no-sweep"],
)
async def test_early_start_gives_the_plain_assessments_document(
    serve_zones: ServeZones, options: AssessOptions
) -> None:
    client = await serve_zones({f"{DOMAIN}.": ZONE})
    plain = assessment_to_json(await assess(DOMAIN, client, options))
    stages: list[str] = []
    early = await assess_early(DOMAIN, client, options, check_names(), on_stage=stages.append)
    assert _without_timings(assessment_to_json(early)) == _without_timings(plain)
    transport = options.only == frozenset() or "starttls" in options.only
    # The sessions start once the MX set is known: before or after the imports are done.
    assert stages[:2] == ["questions", "importing"]
    assert sorted(stages[2:]) == sorted(["imported", *(["transport"] if transport else [])])


@pytest.mark.parametrize(
    ("faults", "zone"),
    [
        ({f"{DOMAIN}/MX": Fault.TIMEOUT}, ZONE),
        ({f"{DOMAIN}/MX": Fault.SERVFAIL}, ZONE),
        ({f"_dmarc.{DOMAIN}/TXT": Fault.SERVFAIL, f"{DOMAIN}/TXT": Fault.TIMEOUT}, ZONE),
        ({f"mx1.{DOMAIN}/A": Fault.TIMEOUT}, ZONE),
        ({}, ZONE.replace("@ IN MX 10 mx1", "@ IN MX 0 .")),
    ],
    ids=["mx-timeout", "mx-servfail", "records-fail", "host-timeout", "null-mx"],
)
async def test_an_early_question_that_fails_gives_the_same_error_results(
    serve_zones: ServeZones, faults: dict[str, Fault], zone: str
) -> None:
    """A timeout or SERVFAIL met early is the same `error` a plain assessment reports, never "absent"."""
    client = await serve_zones({f"{DOMAIN}.": zone}, faults=faults)
    plain = assessment_to_json(await assess(DOMAIN, client, OPTIONS))
    early = await assess_early(DOMAIN, client, OPTIONS, check_names())
    assert _without_timings(assessment_to_json(early)) == _without_timings(plain)
    if faults:
        assert "error" in {f["status"] for f in plain["findings"]}


async def test_a_failed_background_import_is_raised_not_hung(serve_zones: ServeZones) -> None:
    client = await serve_zones({f"{DOMAIN}.": ZONE})
    with pytest.raises(ModuleNotFoundError, match="mecsa_no_such_module"):
        await assess_early(DOMAIN, client, OPTIONS, check_names(), extra_modules=("mecsa_no_such_module",))


async def test_a_usage_check_run_after_the_imports_stops_before_any_check(
    serve_zones: ServeZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--ca-file`'s cryptography half runs once cryptography is imported: its error ends the run."""
    client = await serve_zones({f"{DOMAIN}.": ZONE})
    ran: list[str] = []

    async def no_assess(*args: Any, **kwargs: Any) -> None:
        ran.append("assess")

    monkeypatch.setattr("mecsa.assess.assess", no_assess)

    def refuse() -> None:
        ran.append("check")
        raise click.exceptions.Exit(2)

    with pytest.raises(click.exceptions.Exit):
        await assess_early(
            DOMAIN, client, OPTIONS, check_names(), extra_modules=("cryptography.x509",), before_assess=refuse
        )
    assert ran == ["check"]
    assert "cryptography.x509" in sys.modules


def test_importer_sets_each_stage_and_hands_a_failure_to_every_later_stage() -> None:
    importer = Importer((("json",), ("mecsa_no_such_module",), ("csv",))).start()
    importer.join()
    assert importer.stage(0).result(5) is None
    for later in (1, 2):
        assert isinstance(importer.stage(later).exception(5), ModuleNotFoundError)


async def test_a_slow_mx_answer_holds_back_the_other_checks_at_most_launch_wait(
    serve_zones: ServeZones,
) -> None:
    """The checks wait for the SMTP connects only briefly: SPF's include, asked by the spf check
    once it runs, must not queue behind the MX question's timeout (1 s here), as it would unbounded."""
    zone = ZONE.replace("v=spf1 mx -all", "v=spf1 include:slow.example.test -all")
    faults = {f"{DOMAIN}/MX": Fault.TIMEOUT, f"slow.{DOMAIN}/TXT": Fault.TIMEOUT}
    client = await serve_zones({f"{DOMAIN}.": zone}, faults=faults, dns_timeout=1.0, attempts=1)
    started = time.monotonic()
    result = await assess_early(DOMAIN, client, OPTIONS, check_names())
    elapsed = time.monotonic() - started
    # Both time out (1 s each): beside each other about 1 + LAUNCH_WAIT s, one after the other 2 s.
    assert LAUNCH_WAIT <= 0.25
    assert elapsed < 1.0 + 0.25 + 0.4, elapsed
    spf = next(r for r in result.results if r.check == "spf")
    assert "error" in {v.status.value for v in spf.verdicts}


# A fresh interpreter, so that the importer really imports (in this process every module is in).
# It records, per thread and phase, every module imported.
_FRESH = textwrap.dedent(
    """
    import asyncio, json, sys, threading
    from mecsa.dns.resolver import DnsClient, Nameserver
    from mecsa.checks.registry import check_names
    from mecsa.cli.early import assess_early
    from mecsa.observe import AssessOptions

    port, domain, mode, https_port = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    phase = ["before"]
    imports = []  # (phase, thread, module)

    class Recorder:  # asked first for every module not yet imported, in the importing thread
        @staticmethod
        def find_spec(name, path=None, target=None):
            imports.append((phase[0], threading.current_thread().name, name))
            return None

    if True:  # the zone server runs in the test's process: this one imports only what the CLI does
        client = DnsClient([Nameserver("127.0.0.1", port)], timeout=0.3, attempts=2)
        options = AssessOptions(
            dkim_selectors=("sel",), smtp_timeout=2.0, check_deadline=20.0, https_port=https_port
        )
        if mode != "none":  # the CLI's helper; "gone": dead before the first request
            from mecsa.cli.assess import _remote_attempt
            from mecsa.probes.https_helper import HelperProcess

            helper = HelperProcess.spawn(None)
            if mode == "gone":
                helper.kill()
        sys.meta_path.insert(0, Recorder)

        async def early():
            imported = asyncio.Event()

            def stage(name):
                phase[0] = {"importing": "importing", "imported": "after"}.get(name, phase[0])
                if name == "imported":
                    imported.set()

            attempt = _remote_attempt(helper, None, imported) if mode != "none" else None
            result = await assess_early(domain, client, options, check_names(),
                                        extra_modules=("mecsa.report.json",), on_stage=stage,
                                        https_attempt=attempt)
            return result, attempt is not None and attempt.gone

        result, gone = asyncio.run(early())
        from mecsa.report.json import assessment_to_json
        from mecsa.assess import assess
        plain = asyncio.run(assess(domain, client, options))
    half = [n for n, m in sys.modules.items()
            if getattr(getattr(m, "__spec__", None), "_initializing", False)]
    print(json.dumps({
        "imports": imports,
        "half_initialised": half,
        "loaded": list(sys.modules),
        "early": assessment_to_json(result),
        "gone": gone,
        "plain": assessment_to_json(plain),
    }))
    """
)


@pytest.mark.parametrize("helper", ["none", "running", "gone"])
def test_in_a_fresh_interpreter_only_the_importer_thread_imports_while_it_runs(helper: str) -> None:
    """Two threads never race to initialise a module: the loop thread imports nothing new meanwhile.

    With the CLI's helper the policy is asked early (here a closed port refuses it); a helper that
    is gone leaves the request to this process, whose httpx imports must wait for the importer.
    """
    zone = ZONE + "mta-sts IN A 127.0.0.1\n"
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        https_port = str(closed.getsockname()[1])  # nothing listens there once it is closed
    with ThreadedZoneServer(ZoneData.from_texts({f"{DOMAIN}.": zone})) as server:
        port = server.address.rsplit(":", 1)[1]
        done = subprocess.run(
            [sys.executable, "-c", _FRESH, port, DOMAIN, helper, https_port],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    # A module looked for and not found (dnspython tries one per record class) ran no code.
    loaded = set(out["loaded"])
    during = [(t, m) for phase, t, m in out["imports"] if phase == "importing" and m in loaded]
    by_main = [module for thread, module in during if thread != "mecsa-importer"]
    assert by_main == []
    # The background thread did the heavy imports: the checks, scoring, the renderer.
    imported = {module for thread, module in during if thread == "mecsa-importer"}
    assert {"mecsa.checks.x509", "mecsa.scoring", "mecsa.report.json", "mecsa.observe.transport"} <= imported
    assert out["half_initialised"] == []
    assert _without_timings(out["early"]) == _without_timings(out["plain"])
    assert out["gone"] is (helper == "gone")
    fetch = out["early"]["checks"]["mta-sts"]["fetch"]
    assert "refused" in json.dumps(fetch).lower(), fetch
