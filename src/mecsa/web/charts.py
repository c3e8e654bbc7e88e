"""Inline SVG charts for the pages: built from numbers and our own labels, every label escaped."""

from __future__ import annotations

import html
from collections.abc import Sequence

from markupsafe import Markup

AREA_COLOURS = {"confidentiality": "#1565c0", "phishing": "#c62828", "integrity": "#2e7d32"}


def _svg(width: int, height: int, label: str, parts: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(label)}">'
    )
    # Every part is made below from numbers and escaped text: the one place markup is declared safe.
    return Markup(head + "".join(parts) + "</svg>")


def bar_chart(
    values: Sequence[tuple[str, int]], label: str, *, width: int = 440, height: int = 150
) -> Markup:
    """A vertical bar chart: one bar per (label, value), the value above the bar."""
    top = max((v for _, v in values), default=0) or 1
    step = width / max(len(values), 1)
    parts = []
    for i, (name, value) in enumerate(values):
        h = (height - 34) * value / top
        x = i * step + 3
        y = height - 18 - h
        centre = x + (step - 6) / 2
        text = html.escape(name)
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step - 6:.1f}" height="{h:.1f}" fill="#1565c0">'
            f"<title>{text}: {value}</title></rect>"
            f'<text x="{centre:.1f}" y="{height - 4}" text-anchor="middle" font-size="11">{text}</text>'
            f'<text x="{centre:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="11">{value}</text>'
        )
    return _svg(width, height, label, parts)


def levels_chart(
    points: Sequence[tuple[str, dict[str, int | None]]], *, width: int = 640, height: int = 220
) -> Markup:
    """The three areas' levels (0-10) over time, oldest left: one line and its dots per area."""
    left, right, top, bottom = 30, 10, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(points)

    def x(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y(level: int) -> float:
        return top + plot_h * (10 - level) / 10

    parts = []
    for grid in (0, 2, 4, 6, 8, 10):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(grid):.1f}" y2="{y(grid):.1f}" '
            'stroke="#d8dee4"/>'
            f'<text x="{left - 6}" y="{y(grid) + 4:.1f}" text-anchor="end" font-size="11">{grid}</text>'
        )
    for area, colour in AREA_COLOURS.items():
        levels = [(i, lv.get(area)) for i, (_, lv) in enumerate(points)]
        coords = [(x(i), y(level)) for i, level in levels if level is not None]
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
            parts.append(
                f'<polyline class="line-{area}" points="{path}" fill="none" stroke="{colour}" '
                'stroke-width="2"/>'
            )
        for i, level in levels:
            if level is not None:
                when = points[i][0]
                parts.append(
                    f'<circle class="dot-{area}" cx="{x(i):.1f}" cy="{y(level):.1f}" r="4" fill="{colour}">'
                    f"<title>{html.escape(area)} {level} on {html.escape(when)}</title></circle>"
                )
    if n:
        # the first and last dates, anchored inwards so that they stay inside the chart
        for i, anchor in sorted({(0, "start"), (n - 1, "end" if n > 1 else "middle")}):
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - 6}" text-anchor="{anchor}" font-size="11">'
                f"{html.escape(points[i][0])}</text>"
            )
    return _svg(width, height, "levels over time", parts)
