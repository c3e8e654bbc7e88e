"""The check registry imports a check's module only when it is needed (issue 20)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys

import pytest

from mecsa.checks import registry

_CHILD = """
import json, sys
from mecsa.checks import registry
names = registry.check_names()
checks = lambda: [m for m in sys.modules if m.startswith("mecsa.checks.")]
loaded = lambda: sorted(m for m in checks() if m != "mecsa.checks.registry")
before = loaded()
picked = [c.name for c in registry.selected_checks(only={"dmarc"})]
after_selected = loaded()
every = [c.name for c in registry.CHECKS]
print(json.dumps([names, before, picked, after_selected, every, loaded()]))
"""


def test_names_need_no_check_module_and_a_selection_imports_its_own() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, check=True
    )
    names, before, picked, after_selected, every, after_all = json.loads(done.stdout)
    assert before == []
    assert picked == ["dmarc"]
    assert "mecsa.checks.dmarc" in after_selected
    assert not {"mecsa.checks.x509", "mecsa.checks.dane", "mecsa.checks.starttls"} & set(after_selected)
    assert every == names
    assert {f"mecsa.checks.{m}" for m in ("x509", "dane", "starttls", "mx")} <= set(after_all)


def test_the_table_names_each_modules_own_check() -> None:
    for name, module in registry.CHECK_MODULES:
        assert importlib.import_module(module).CHECK.name == name
    assert registry.check_names() == tuple(c.name for c in registry.CHECKS)


def test_selection_follows_a_replaced_checks_tuple(monkeypatch: pytest.MonkeyPatch) -> None:
    renamed = tuple(dataclasses.replace(c, summary="replaced") for c in registry.CHECKS)
    monkeypatch.setattr(registry, "CHECKS", renamed)
    chosen = registry.selected_checks(skip={"dane"})
    assert [c.name for c in chosen] == [n for n in registry.check_names() if n != "dane"]
    assert {c.summary for c in chosen} == {"replaced"}
    assert set(registry.PROTOCOL_OWNERS.values()) <= set(registry.check_names())
