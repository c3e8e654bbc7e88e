"""The HTML report in headless Chromium: it renders, its script runs, and hostile strings stay text."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mecsa.report.html import render_html
from mecsa.report.view import build_view
from tests.unit.report.samples import HOSTILE_IMG, HOSTILE_SCRIPT, TODAY, hostile, neglected

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="headless Chromium (/usr/bin/chromium) is not installed"
    ),
    pytest.mark.slow,
]


def _chromium(profile_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    profile_dir.mkdir()
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile_dir}",
    ]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, timeout=90, check=True)


class _Dom(HTMLParser):
    """Element counts, attributes and text of the dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.attributes: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []
        self._in_title = False
        self.title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.attributes.extend((tag, k, v) for k, v in attrs)
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_title:
            self.title += data


def test_hostile_strings_render_as_text_and_inject_nothing(tmp_path: Path) -> None:
    page = tmp_path / "hostile.html"
    page.write_text(render_html(hostile(), today=TODAY), encoding="utf-8")
    dump = _chromium(tmp_path / "profile", "--dump-dom", page.as_uri()).stdout.decode("utf-8")
    dom = _Dom()
    dom.feed(dump)
    assert dom.title == "mecsa report: evil.test"  # the injected script would have set 'pwned'
    assert dom.tags.get("script") == 1  # the report's own script only
    assert "img" not in dom.tags
    assert not [a for a in dom.attributes if a[1].startswith("on")]  # no event handler attribute at all
    text = "".join(dom.text)
    assert HOSTILE_SCRIPT in text
    assert HOSTILE_IMG in text
    assert ("html", "data-copy-ready", "yes") in dom.attributes  # our script ran under the CSP


def test_report_renders_to_a_screenshot(tmp_path: Path) -> None:
    page = tmp_path / "neglected.html"
    page.write_text(render_html(neglected(), today=TODAY), encoding="utf-8")
    shot = tmp_path / "neglected.png"
    _chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1100,1400", page.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a blank page compresses to a few kilobytes


def test_dom_keeps_levels_details_and_copy_buttons(tmp_path: Path) -> None:
    page = tmp_path / "neglected.html"
    page.write_text(render_html(neglected(), today=TODAY), encoding="utf-8")
    dom = _Dom()
    dom.feed(_chromium(tmp_path / "profile", "--dump-dom", page.as_uri()).stdout.decode("utf-8"))
    assert dom.tags["svg"] == 3
    assert dom.tags["details"] == 11 + 2  # one per protocol, one per MX host
    buttons = [v for tag, k, v in dom.attributes if tag == "button" and k == "data-target"]
    ids = {v for _, k, v in dom.attributes if k == "id"}
    # one copy button per snippet: 8 fixes (tls-rpt, mta-sts, dmarc, dkim, spf, starttls, dane x2)
    snippets = [s for f in build_view(neglected(), today=TODAY).fixes for s in f.snippets]
    assert len(buttons) == len(snippets) == 15 and set(buttons) <= ids
    assert "level 2/10" in "".join(dom.text)
