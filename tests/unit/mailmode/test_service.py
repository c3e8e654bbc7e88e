"""The web's entry point on loopback: start a probe, follow the live state, read the report."""

from __future__ import annotations

from pathlib import Path

import aiosmtplib
import pytest

from mecsa.mailmode.receiver import Receiver, ReceiverSettings
from mecsa.mailmode.service import MailModeService, ProbeRequestError, Stage
from mecsa.mailmode.store import MailStore
from mecsa.observe import AssessOptions
from tests.conftest import ServeZones
from tests.unit.mailmode.signing import message, sign_rsa
from tests.unit.mailmode.test_loop import USER, _user_mx


async def test_probe_then_reply_walks_the_live_state_to_the_provider_report(
    tmp_path: Path, serve_zones: ServeZones
) -> None:
    user_mx, client = await _user_mx(tmp_path, serve_zones, tlsa_ok=True)
    store = await MailStore.open(tmp_path / "service.sqlite3")
    options = AssessOptions(only=frozenset({"spf", "dkim", "dmarc"}))
    settings = ReceiverSettings("receiver.test", port=0, assess_options=options)
    receiver = await Receiver(settings, store, client).start()
    service = MailModeService(store, client, "receiver.test", smtp_port=user_mx.port, smtp_timeout=3)
    try:
        with pytest.raises(ProbeRequestError, match="is not an e-mail address"):
            await service.start_probe("not an address")
        started = await service.start_probe(USER)
        assert started.reply_to[1] == f"{started.token}@dane-trap.receiver.test"
        await service.drain()
        state = await service.state(started.token)
        assert state is not None and state.stage is Stage.WAITING_FOR_REPLY, state
        assert await user_mx.store.entries("user1234user5678")  # the probe landed at the user's MX
        cc = f"Cc: {started.reply_to[1]}, {started.reply_to[2]}\r\n"
        raw = sign_rsa(message(to=started.reply_to[0], extra=cc), "s1", "sender.test", "good")
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, local_hostname="mail.sender.test")
        await smtp.connect()
        await smtp.sendmail("bounce@sender.test", [started.reply_to[0]], raw)
        await smtp.quit()
        await receiver.drain()
        state = await service.state(started.token)
        assert state is not None and state.stage is Stage.REPORT_READY, state
        assert state.messages == 1 and set(state.levels) == {"mecsa", "mecsa-st"}
        assert state.enforcement["dane"] == "unknown yet" and state.pending
        report = await service.report(started.token)
        assert report is not None and report["provider"]["messages"] == 1
        assert report["inbound"]["delivered"] is True
        assert "Which evidence counted" in service.report_html(report)
        assert (await service.state("nosuchtoken1234")) is None
    finally:
        await receiver.stop()
        await store.close()
        await user_mx.stop()
        await user_mx.store.close()
