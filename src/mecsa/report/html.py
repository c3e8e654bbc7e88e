"""HTML report: one self-contained file (inline CSS, inline SVG, a few lines of inline JS).

jinja2 with autoescape ON: every string from DNS, SMTP banners or certificates is escaped (and, first,
its control and bidi characters made visible by `mecsa.report.untrusted`). The
template marks nothing `|safe`; the only value passed as markup is the module's own script. A Content
Security Policy allows only the report's own script (by hash) and no network access, as a second
line of defence should an escape ever be missed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from importlib import resources
from typing import TYPE_CHECKING

from mecsa.model import Assessment
from mecsa.report.untrusted import html_value

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.html.j2"
# the whole script of the report, kept here so that the CSP can name its hash; `copyReady`
# marks that it ran (the browser test checks it, which proves the CSP hash admits it)
COPY_SCRIPT = """
document.documentElement.dataset.copyReady = 'yes';
document.querySelectorAll('button.copy').forEach(function (button) {
  button.addEventListener('click', function () {
    var text = document.getElementById(button.dataset.target).textContent;
    var done = function () {
      button.textContent = 'Copied';
      setTimeout(function () { button.textContent = 'Copy'; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
    } else { fallback(text); done(); }
  });
});
function fallback(text) {
  var area = document.createElement('textarea');
  area.value = text; document.body.appendChild(area); area.select();
  try { document.execCommand('copy'); } finally { document.body.removeChild(area); }
}
"""


def script_hash() -> str:
    digest = hashlib.sha256(COPY_SCRIPT.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def render_html(assessment: Assessment, profile: str = "mecsa", today: dt.date | None = None) -> str:
    """The report as one HTML document."""
    import markupsafe

    from mecsa.report.view import ADDRESS_COLUMNS, build_view

    template = template_environment().get_template(TEMPLATE)
    view = build_view(assessment, profile, today)
    # the script is this module's constant, not data: the one value passed as markup
    script = markupsafe.Markup(COPY_SCRIPT)
    return template.render(
        view=view,
        script=script,
        script_hash=script_hash(),
        ring=ring,
        address_columns=ADDRESS_COLUMNS,
    )


def template_environment(*extra: jinja2.BaseLoader) -> jinja2.Environment:
    """The report's templates (autoescaped), after `extra` loaders: the web pages reuse its parts.

    `report.html.j2` is the whole document; `report_body.html.j2` (the sections) and
    `report_style.css.j2` (its style sheet) are the components it includes.
    """
    import jinja2

    templates = resources.files("mecsa.report").joinpath("templates")
    loader = jinja2.ChoiceLoader([*extra, jinja2.FileSystemLoader(str(templates))])
    return jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        # every value from the network is escaped for control and bidi characters too (issue 12)
        finalize=html_value,
    )


def ring(level: int) -> dict[str, float]:
    """Geometry of one area's ring gauge: the arc length for `level` out of 10."""
    radius = 42.0
    circumference = 2 * 3.141592653589793 * radius
    return {"r": radius, "c": round(circumference, 2), "arc": round(circumference * level / 10, 2)}
