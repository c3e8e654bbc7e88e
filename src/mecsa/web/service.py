"""What the routes share (settings, store, job runner, renderers), kept on `app.state.service`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from mecsa.store import Store
from mecsa.web.jobs import JobRunner
from mecsa.web.rendering import Pages, ReportCache
from mecsa.web.scans import ScanRunner
from mecsa.web.settings import ServiceSettings


@dataclass
class Service:
    """What the routes share: settings, the store, the job runner, the page renderer."""

    settings: ServiceSettings
    store: Store
    runner: JobRunner
    pages: Pages
    reports: ReportCache
    scans: ScanRunner


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service
