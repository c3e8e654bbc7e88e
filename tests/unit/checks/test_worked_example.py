"""The worked example of docs/architecture.md: a check in one module plus one registry line.

The module is the doc's own code block, so the doc cannot drift from what works.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from mecsa.assess import assess
from mecsa.checks import registry
from mecsa.observe import AssessOptions
from mecsa.report.text import render_text
from tests.conftest import ServeZones
from tests.unit.transport.pki import Pki
from tests.unit.transport.servers import LoopbackServers, server_context

DOC = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"


def _doc_module() -> types.ModuleType:
    text = DOC.read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    module = types.ModuleType("mecsa.checks.requiretls")
    sys.modules[module.__name__] = module
    exec(compile(code.group(1), str(DOC), "exec"), module.__dict__)
    return module


@pytest.fixture
def with_requiretls(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = _doc_module()
    # the "one registry line"
    monkeypatch.setattr(registry, "CHECKS", (*registry.CHECKS, module.CHECK))
    monkeypatch.delitem(sys.modules, module.__name__)
    return module


def test_everything_else_is_derived(with_requiretls: types.ModuleType) -> None:
    assert "requiretls" in registry.check_names()
    assert registry.finding_catalogue()["requiretls.missing"] == "REQUIRETLS not offered"
    assert "requiretls.check_error" in registry.finding_catalogue()
    assert "requiretls.enable" in registry.remedies()
    assert registry.schema_lists()["protocols"][-2:] == ["requiretls", "mx"]
    from mecsa.cli.checks import catalogue_markdown

    assert "| `requiretls.missing` | fail | requiretls | REQUIRETLS not offered | `requiretls.enable` |" in (
        catalogue_markdown()
    )


async def test_it_runs_reports_and_fixes(
    with_requiretls: types.ModuleType, serve_zones: ServeZones, tmp_path: Path
) -> None:
    pki = Pki.create()
    servers = LoopbackServers()
    leaf = pki.leaf("mx1.example.test")
    await servers.add_smtpd("127.0.0.30", server_context(leaf, pki.intermediate.pem, tmp_path))
    try:
        client = await serve_zones(
            {
                "example.test.": "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\n"
                "ns IN A 127.0.0.53\n@ IN MX 10 mx1\nmx1 IN A 127.0.0.30\n"
            }
        )
        options = AssessOptions(smtp_port=servers.port, smtp_timeout=1.0, only=frozenset({"requiretls"}))
        result = await assess("example.test", client, options)
    finally:
        await servers.close()
    assert [f.id for f in result.findings] == ["requiretls.missing"]
    assert result.verdicts["requiretls"].status.value == "fail"
    text = render_text(result, color=False, width=100)
    assert "requiretls" in text and "Offer REQUIRETLS" in text
