"""A refused probe records the reply code, the enhanced status and the text, and says what happened."""

from __future__ import annotations

from pathlib import Path

from mecsa.mailmode.probe import refused, run_probe
from tests.conftest import ServeZones
from tests.unit.mailmode.test_loop import TOKEN, _user_mx


async def test_probe_refused_at_rcpt_records_code_enhanced_status_and_plain_words(
    tmp_path: Path, serve_zones: ServeZones
) -> None:
    receiver, client = await _user_mx(tmp_path, serve_zones, tlsa_ok=True)
    try:
        result = await run_probe(
            "nobody@user.test", "receiver.test", TOKEN, client, port=receiver.port, smtp_timeout=3
        )
    finally:
        await receiver.stop()
        await receiver.store.close()
    assert not result.delivered
    (attempt,) = result.attempts
    delivery = attempt.delivery
    assert delivery is not None
    assert (delivery.code, delivery.enhanced_status, delivery.stage) == (550, "5.1.1", "RCPT")
    assert delivery.reply == "No such user here"
    assert delivery.explanation == (
        "the provider's server refused the probe for good at RCPT because of the address "
        "(550 No such user here)"
    )
    data = attempt.to_json()["delivery"]
    assert data["code"] == 550 and data["enhanced_status"] == "5.1.1" and "refused" in data["explanation"]
    assert "SMTPRecipientsRefused" not in data["reply"]


def test_refusal_without_enhanced_status_keeps_the_whole_text() -> None:
    d = refused(451, "Try again   later", "DATA")
    assert (d.code, d.enhanced_status, d.reply) == (451, None, "Try again later")
    assert (
        d.explanation
        == "the provider's server asked to try the probe again later at DATA (451 Try again later)"
    )
