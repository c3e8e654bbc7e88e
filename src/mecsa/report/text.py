"""Terminal report (rich): the three areas with levels and stars, each protocol, a table per MX, the fixes.

The MX tables are compact (one row per address); the JSON and the HTML report keep every detail.

Plain text (no colour codes) unless `color=True`: the CLI passes whether stdout is a terminal.
Every string from the wire goes in as a rich `Text` (never parsed as markup) after `clean`, which
makes control characters visible, so a hostile TXT record cannot drive the terminal.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import sys
from typing import TYPE_CHECKING, Any

from mecsa.model import Assessment
from mecsa.report.untrusted import escape_untrusted

if TYPE_CHECKING:
    from rich.console import Console

    from mecsa.report.view import AddressRow, ReportView

MAX_VALUE = 160  # long values (keys, certificates) are cut in the terminal; the JSON has them whole
_STYLE = {"pass": "green", "fail": "red", "error": "yellow", "not_applicable": "dim", "not_assessed": "dim"}
_GRADE_STYLE = {"good": "bold green", "fair": "bold yellow", "poor": "bold red"}
_FINDING_MARK = {"fail": "✘", "warn": "!", "error": "?"}


def clean(text: str, limit: int | None = None) -> str:
    """One printable line: control and format characters (ESC, bidi overrides, newlines) escaped."""
    out = escape_untrusted(text)
    if limit is not None and len(out) > limit:
        return out[: limit - 1] + "…"
    return out


def terminal_settings() -> dict[str, Any]:
    """Colour only on a terminal (and not with NO_COLOR set); its width there, 100 columns elsewhere."""
    tty = sys.stdout.isatty()
    color = tty and not os.environ.get("NO_COLOR")
    width = shutil.get_terminal_size((100, 24)).columns if tty else 100
    return {"color": color, "width": max(60, width)}


def render_text(
    assessment: Assessment,
    profile: str = "mecsa",
    *,
    color: bool = False,
    width: int = 100,
    today: dt.date | None = None,
) -> str:
    """The report as text; with `color`, ANSI styles for a terminal."""
    from rich.console import Console

    from mecsa.report.view import build_view

    view = build_view(assessment, profile, today)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
    )
    _write(console, view)
    # rich pads table cells to the column width: trailing blanks only make diffs and pastes noisy
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())


def _write(console: Console, view: ReportView) -> None:
    from rich.table import Table
    from rich.text import Text

    from mecsa.report.view import ADDRESS_COLUMNS

    title = Text.assemble(
        ("mecsa ", "bold"),
        (clean(view.domain), "bold cyan"),
        f"  (profile {view.profile}, mecsa {clean(view.mecsa_version)}, {view.duration_s:g} s)",
    )
    console.print(title)
    for note in view.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    console.print()

    areas = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    for area in view.areas:
        style = _GRADE_STYLE[area.grade]
        areas.add_row(
            Text(area.title, style="bold"),
            Text(f"{area.level:>2}/10", style=style),
            Text(area.star_text, style=style),
            Text(f"{area.stars:g} star{'' if area.stars == 1 else 's'}", style="dim"),
        )
    console.print(areas)
    console.print()

    console.print(Text("Protocols", style="bold underline"))
    rows = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1, 0, 0))
    for p in view.protocols:
        reason = clean(p.reason, MAX_VALUE)
        reason += p.share_note
        if p.count_note:
            reason += f" [{p.count_note}]"
        rows.add_row(Text(p.mark, style=_STYLE[p.status]), Text(p.protocol), Text(reason))
    console.print(rows)

    for host in view.hosts:
        console.print()
        facts = "; ".join(f"{k} {clean(v)}" for k, v in host.facts)
        title = Text.assemble(("MX ", "bold"), (clean(host.name), "bold"), (f"  ({facts})", "dim"))
        table = Table(title=title, title_justify="left")
        for column in ADDRESS_COLUMNS:
            table.add_column(column, overflow="fold")
        for row in host.addresses:
            table.add_row(*(_cell_text(cell) for cell in _cells(row)))
        console.print(table)

    if view.problems:
        console.print()
        console.print(Text("Problems", style="bold underline"))
        for f in view.problems:
            line = Text.assemble(
                (_FINDING_MARK[f.status.value], _STYLE.get(f.status.value, "yellow")),
                f" {f.id}",
                f" [{clean(f.subject)}]" if f.subject else "",
                f": {clean(f.message, MAX_VALUE * 2)}",
            )
            console.print(line)

    if view.fixes:
        console.print()
        console.print(Text("Fixes", style="bold underline"))
        for fix in view.fixes:
            console.print()
            console.print(
                Text.assemble(
                    ("▶ ", "cyan"), (clean(fix.title), "bold"), f"  (fixes {', '.join(fix.findings)})"
                )
            )
            for snippet in fix.snippets:
                console.print(Text(f"  {clean(snippet.where)}:", style="dim"))
                for text_line in snippet.text.splitlines():
                    # no wrapping and no box: the lines must paste as they are
                    console.print(Text(f"    {clean(text_line)}"), soft_wrap=True)


def _cells(row: AddressRow) -> tuple[str, ...]:
    return (row.address, row.starttls, row.tls_versions, row.certificate, row.dane, row.mta_sts)


def _cell_text(cell: str) -> Any:
    """A table cell with each "; "-separated part on a line of its own (each part cleaned)."""
    from rich.text import Text

    return Text("\n".join(clean(part, MAX_VALUE) for part in cell.split("; ")))
