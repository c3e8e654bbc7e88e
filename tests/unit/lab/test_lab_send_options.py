"""`mecsa lab send --sender ... --cc-traps`: bad choices are one-line usage errors (exit 2)."""

from __future__ import annotations

from click.testing import CliRunner

from mecsa.cli import app


def test_lab_send_refuses_an_unknown_sender() -> None:
    result = CliRunner().invoke(app, ["lab", "send", "abcdefgh12345678@mailmode.test", "--sender", "bob"])
    assert result.exit_code == 2
    assert "--sender must be hardened, may or outsider, not 'bob'" in result.output


def test_lab_send_cc_traps_needs_a_mail_mode_address() -> None:
    result = CliRunner().invoke(app, ["lab", "send", "bob@top.test", "--cc-traps"])
    assert result.exit_code == 2 and "--cc-traps needs a mail-mode address" in result.output


def test_lab_send_help_names_the_three_senders() -> None:
    result = CliRunner().invoke(app, ["lab", "send", "--help"])
    assert result.exit_code == 0
    assert "outsider" in result.output and "--cc-traps" in result.output
