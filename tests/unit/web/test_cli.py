"""`mecsa serve` on the command line: tokens, and one-line errors for bad options (exit 2)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from mecsa.cli import app
from mecsa.store import open_store
from mecsa.store.api_tokens import token_is_valid

runner = CliRunner()


def test_token_create_prints_a_token_that_the_store_accepts_then_revoke(tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite")
    created = runner.invoke(app, ["serve", "token", "create", "--name", "ops", "--store", store])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    with open_store(store) as opened:
        assert token_is_valid(opened, token)
    listed = runner.invoke(app, ["serve", "token", "list", "--store", store])
    assert listed.exit_code == 0 and "\tops\t" in listed.stdout and token not in listed.stdout
    revoked = runner.invoke(app, ["serve", "token", "revoke", "1", "--store", store])
    assert revoked.exit_code == 0
    again = runner.invoke(app, ["serve", "token", "revoke", "1", "--store", store])
    assert again.exit_code == 2 and "no active token 1" in again.output
    with open_store(store) as opened:
        assert not token_is_valid(opened, token)


def test_bad_options_are_one_line_errors_with_exit_2(tmp_path: Path) -> None:
    for args, message in (
        (["serve", "--listen", "nowhere"], "--listen 'nowhere'"),
        (["serve", "--listen", "127.0.0.1:99999"], "--listen"),
        (["serve", "--resolver", "not-an-ip"], "not-an-ip"),
        (["serve", "--profile", "nope", "--store", str(tmp_path / "s.sqlite")], "nope"),
        (["serve", "--store", "postgresql://postgres@127.0.0.1:9/none"], "cannot open the store"),
        (["serve", "token", "create", "--name", " ", "--store", str(tmp_path / "s.sqlite")], "--name"),
        (["serve", "--ca-file", str(tmp_path / "missing.pem")], "--ca-file"),
        (["serve", "--dkim-selector", "bad selector!"], "bad DKIM selector"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("mecsa: error:")]
        assert len(errors) == 1 and message in errors[0], (args, result.output)
