"""Server-rendered pages: one Jinja2 environment (autoescape on) over the web templates and the
report's own components (`report_body.html.j2`, `report_style.css.j2`), so a report looks the same
on the web as in the downloadable file.

Every page gets the request's CSP nonce for its one style sheet and its scripts. Nothing from the
network is marked safe: the only markup passed in is ours (the copy script, the SVG charts).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2
from fastapi import Request
from markupsafe import Markup

from mecsa.model import Assessment
from mecsa.store import Store, StoredAssessment

SCRIPTS = ("progress.js",)


class Pages:
    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        from mecsa.report.html import template_environment

        here = resources.files("mecsa.web").joinpath("templates")
        self.env = template_environment(jinja2.FileSystemLoader(str(here)))
        static = resources.files("mecsa.web").joinpath("static")
        self.scripts = {name: Markup(static.joinpath(name).read_text("utf-8")) for name in SCRIPTS}

    def report_body(self, assessment: Assessment, profile: str) -> str:
        """The report's sections (`report_body.html.j2`) for a live assessment: thread-safe."""
        from mecsa.report.html import ring
        from mecsa.report.view import ADDRESS_COLUMNS, build_view

        view = build_view(assessment, profile)
        return self.env.get_template("report_body.html.j2").render(
            view=view, ring=ring, address_columns=ADDRESS_COLUMNS
        )

    def body_from_document(self, document: dict[str, Any]) -> str:
        """The sections for a stored document the service did not render itself (a scan's).

        The typed facts are read back from the document's details (`web.document`); a detail that
        does not read (a document from another mecsa) leaves dashes in the MX table.
        """
        from mecsa.web.document import assessment_from_document

        return self.report_body(assessment_from_document(document), str(document.get("profile") or "mecsa"))

    def render(self, request: Request, template: str, **context: Any) -> str:
        nonce = request.scope.get("state", {}).get("csp_nonce", "")
        return self.env.get_template(template).render(nonce=nonce, scripts=self.scripts, **context)

    def message(self, request: Request, title: str, text: str) -> str:
        """A page that says one thing (an error, a refusal): `text` is escaped like any other."""
        return self.render(request, "page_message.html.j2", title=title, text=text)


class ReportCache:
    """Rendered report pages, most recently used kept: a stored assessment never changes.

    A page is rendered once with a random placeholder where the nonce goes; each response swaps in
    its own nonce. The placeholder is secret to this process, so a document cannot contain it.
    """

    def __init__(self, pages: Pages, size: int = 512) -> None:
        import secrets
        from collections import OrderedDict

        self.pages = pages
        self.size = size
        self.placeholder = "nonce" + secrets.token_hex(16)
        self._pages: OrderedDict[int, str] = OrderedDict()

    def cached(self, request: Request, assessment_id: int) -> str | None:
        """The page when it is rendered already: no store read at all (a stored result never changes)."""
        cached = self._pages.get(assessment_id)
        if cached is None:
            return None
        self._pages.move_to_end(assessment_id)
        return cached.replace(self.placeholder, _nonce(request))

    def page(self, request: Request, stored: StoredAssessment, when: str) -> str:
        cached = self._pages.get(stored.id)
        if cached is None:
            cached = self._render(stored, when)
            self._pages[stored.id] = cached
            if len(self._pages) > self.size:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(stored.id)
        return cached.replace(self.placeholder, _nonce(request))

    def _render(self, stored: StoredAssessment, when: str) -> str:
        from mecsa.report.html import COPY_SCRIPT
        from mecsa.store.web_reports import load_report

        kept = load_report(self.pages.store, stored.id) if self.pages.store is not None else None
        body = kept[0] if kept is not None else self.pages.body_from_document(stored.document())
        return self.pages.env.get_template("page_report.html.j2").render(
            nonce=self.placeholder,
            scripts=self.pages.scripts,
            view=_Heading(stored.domain),
            body=Markup(body),
            copy_script=Markup(COPY_SCRIPT),
            stored=stored,
            when=when,
        )


class _Heading:
    """What the page template reads of the view outside the report's body."""

    def __init__(self, domain: str) -> None:
        self.domain = domain


def _nonce(request: Request) -> str:
    nonce: str = request.scope.get("state", {}).get("csp_nonce", "")
    return nonce
