"""The generated records, served from a loopback DNS server, pass mecsa's own checks."""

from __future__ import annotations

from cryptography import x509

from mecsa.assess import assess
from mecsa.harden.records import records_for
from mecsa.harden.settings import HardenSettings
from mecsa.model import VerdictStatus
from mecsa.observe import AssessOptions

from .conftest import FIXTURES, fixed_dkim_keys

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"


async def test_generated_records_pass_spf_dkim_and_dmarc(serve_zones, settings: HardenSettings) -> None:  # type: ignore[no-untyped-def]
    cert = x509.load_pem_x509_certificate((FIXTURES / "tls-cert.pem").read_bytes())
    public = {s: k.public_key() for (_, s), k in fixed_dkim_keys().items()}
    zone = HEAD + records_for(settings, public, cert).zone_text()
    client = await serve_zones({"example.test.": zone}, secure=["example.test."])
    options = AssessOptions(dkim_selectors=settings.selectors, only=frozenset({"spf", "dkim", "dmarc"}))
    result = await assess("example.test", client, options)
    verdicts = result.verdicts
    for protocol in ("spf", "spf_policy", "dkim", "dmarc", "dmarc_policy"):
        assert protocol in verdicts, f"no verdict for {protocol}: is its check registered?"
        assert verdicts[protocol].status is VerdictStatus.PASS, (
            protocol,
            verdicts[protocol],
            result.findings,
        )
