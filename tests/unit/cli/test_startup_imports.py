"""Commands that do no network work must not pay for the network libraries (issue 20).

Each command runs in a fresh interpreter, since this test process has long imported everything;
the child prints the heavy packages it ended up with.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("dns", "cryptography", "httpx", "publicsuffixlist", "dkim", "jinja2")

_CHILD = """
import json, sys
sys.argv = ["mecsa", *json.loads(sys.argv[1])]
from mecsa.cli import app
try:
    app()
except SystemExit:
    pass
sys.stderr.write("IMPORTED " + json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)) + "\\n")
"""


def _heavy_imports(*args: str) -> list[str]:
    code = f"HEAVY = {HEAVY!r}\n{_CHILD}"
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    marker = [line for line in done.stderr.splitlines() if line.startswith("IMPORTED ")]
    assert done.returncode == 0 and marker, done.stderr
    found: list[str] = json.loads(marker[-1].removeprefix("IMPORTED "))
    return found


@pytest.mark.parametrize(
    "args", [("--version",), ("--help",), ("scoring", "table"), ("assess", "--help")], ids=" ".join
)
def test_command_imports_no_network_library(args: tuple[str, ...]) -> None:
    assert _heavy_imports(*args) == []


def test_the_probe_sees_heavy_imports() -> None:
    # The control: `checks` reads the registry, which imports the checks and dnspython with them.
    assert "dns" in _heavy_imports("checks", "--json")


_ASSESS_PATH = """
import importlib, json, sys
from mecsa.checks.registry import CHECK_MODULES
for module in ("mecsa.cli.assess", "mecsa.cli.early", "mecsa.assess", "mecsa.scoring", "mecsa.report.json",
               "mecsa.report.text", "mecsa.report.html", "mecsa.probes.https_remote",
               *(m for _name, m in CHECK_MODULES)):
    importlib.import_module(module)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("httpx", "httpcore", "anyio", "h11"))))
"""


def test_the_assess_path_leaves_httpx_to_whoever_makes_a_request() -> None:
    # The cold CLI's MTA-STS requests are made by its helper process (mecsa.probes.https_helper),
    # and a revocation fetch imports httpx when a certificate names a source: every module of
    # the assessment, the checks and the renderers imports without it (~30 ms, issue 20).
    done = subprocess.run(
        [sys.executable, "-c", _ASSESS_PATH], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []


_PACKAGE_FILES_PATH = """
import importlib, json, sys
from mecsa.dns.features import DeferredModule, settle
settle()
from mecsa.checks.registry import CHECK_MODULES
for module in ("mecsa.cli.assess", "mecsa.cli.early", "mecsa.assess", "mecsa.scoring", "mecsa.report.json",
               "mecsa.report.text", "mecsa.dns.validation.walker", *(m for _name, m in CHECK_MODULES)):
    importlib.import_module(module)
from mecsa.scoring.engine import load_profile
load_profile("mecsa")  # read from its file
found = sorted(m for m in ("importlib.resources", "zipfile", "tempfile") if m in sys.modules)
metadata = sys.modules.get("importlib.metadata")
if metadata is not None and not isinstance(metadata, DeferredModule):
    found.append("importlib.metadata")
print(json.dumps(found))
"""


def test_the_assess_path_reads_its_own_files_without_importlib_resources_or_metadata() -> None:
    # The scoring profiles, the trust anchors and the suffix rules are read beside their modules,
    # and dnspython's feature checks are settled without distribution metadata: together ~12 ms of
    # a cold `mecsa assess --json` (issue 20). `--html` reads its templates with importlib.resources.
    done = subprocess.run(
        [sys.executable, "-c", _PACKAGE_FILES_PATH], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []
