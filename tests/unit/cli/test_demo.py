"""`mecsa demo`: the embedded, well-configured domain passes its DNS-record protocols on loopback."""

from __future__ import annotations

import base64
import json
from importlib.resources import files
from pathlib import Path

import dns.zone
import jsonschema
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from mecsa.cli import app
from mecsa.demo.zone import DEMO_DOMAIN, DKIM_PUBLIC_KEY, DKIM_SELECTOR, demo_zone_text

# The transport side has no server behind the demo's 127.0.0.x addresses: never a pass there.
TRANSPORT = ("starttls", "x509", "dane", "mta-sts")


def test_demo_json_passes_the_dns_record_protocols(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--embedded", "--json", "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # one JSON object and nothing else on stdout
    assert document["domain"] == DEMO_DOMAIN
    statuses = {name: v["status"] for name, v in document["protocols"].items()}
    for protocol in ("dmarc", "dmarc_policy", "dkim", "tls-rpt", "dnssec"):
        assert statuses.get(protocol) == "pass", (protocol, document["protocols"].get(protocol))
    assert [p for p in TRANSPORT if statuses.get(p) == "pass"] == []
    assert document["resolver"]["validates_dnssec"] is True
    schema = json.loads((files("mecsa.report") / "assessment.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def test_demo_text_report_names_the_domain_and_protocols(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--embedded", "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    # The verdicts are asserted on the JSON; the text layout belongs to the report renderer.
    assert result.stdout.startswith(f"demo: {DEMO_DOMAIN} served")
    assert "tls-rpt" in result.stdout and "dnssec" in result.stdout


def test_demo_html_is_written_and_json_stays_clean(tmp_path: Path) -> None:
    target = tmp_path / "demo.html"
    result = CliRunner().invoke(app, ["demo", "--embedded", "--json", "--html", str(target)])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # the confirmation goes to stderr, never into the JSON
    page = target.read_text(encoding="utf-8")
    assert DEMO_DOMAIN in page and page.lstrip().lower().startswith("<!doctype html>")
    assert f"HTML report written to {target}" in result.stderr


def test_demo_zone_parses_and_carries_a_2048_bit_dkim_key() -> None:
    zone = dns.zone.from_text(demo_zone_text(), origin=DEMO_DOMAIN + ".", relativize=False)
    rdataset = zone.find_rdataset(f"{DKIM_SELECTOR}._domainkey.{DEMO_DOMAIN}.", "TXT")
    text = b"".join(rdataset[0].strings).decode()
    assert text == f"v=DKIM1; k=rsa; p={DKIM_PUBLIC_KEY}"
    key = load_der_public_key(base64.b64decode(DKIM_PUBLIC_KEY))
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    addresses = [rd.to_text() for _, _, rd in zone.iterate_rdatas("A")]
    assert addresses and all(a.startswith("127.") for a in addresses)
