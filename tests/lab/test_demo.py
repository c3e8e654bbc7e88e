"""The README's first command as root with the lab installed: top score, mail flow, clean exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mecsa.lab import netns
from mecsa.lab.plan import namespace_prefix
from tests.lab.helpers import lab_dir, require_lab

pytestmark = pytest.mark.lab


def test_demo_assesses_the_lab_top_score_domain_sends_mail_and_cleans_up(tmp_path: Path) -> None:
    require_lab()
    directory = lab_dir("demo")
    html = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "mecsa", "demo", "--json", "--html", str(html)],
        env={**os.environ, "MECSA_LAB_DIR": str(directory)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["domain"] == "top.test"
    assert document["scores"] == {"confidentiality": 10, "phishing": 10, "integrity": 10}
    assert "DANE-verified TLS: yes" in done.stderr
    for method in ("spf", "dkim", "dmarc"):
        assert f"  {method}: pass" in done.stderr
    assert "top.test" in html.read_text(encoding="utf-8")
    assert not directory.exists()
    assert netns.list_namespaces(namespace_prefix(directory) + "-") == []
