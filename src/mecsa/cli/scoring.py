"""`mecsa scoring`: inspect the scoring profiles (`table`, `profiles`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from mecsa.cli.common import flag, usage_error

if TYPE_CHECKING:
    from mecsa.scoring import Profile


@click.group("scoring", no_args_is_help=True)
def scoring_group() -> None:
    """Inspect the scoring profiles: which protocols give which MECSA level."""


@scoring_group.command("table")
@click.option("--profile", default="mecsa", help="Scoring profile (mecsa, mecsa-st).")
@flag("--json", "json_output", help="All 1024 subsets of the scored protocols, as one JSON array.")
@click.option("--compare", default=None, help="Show a second profile's level beside each row.")
def table_command(profile: str, json_output: bool, compare: str | None) -> None:
    """Print the level of every combination of supported protocols under a profile."""
    from mecsa.scoring import AREAS, all_subsets

    chosen = _profile(profile)
    if json_output:
        rows = [{"protocols": list(s), **chosen.levels(s).as_dict()} for s in all_subsets()]
        click.echo(json.dumps(rows, indent=1))
        return
    other = _profile(compare) if compare else None
    click.echo(f"profile {chosen.name}: {chosen.description}")
    for area in AREAS:
        protocols = chosen.areas[area].protocols
        subsets = [s for s in all_subsets() if set(s) <= set(protocols)]
        header = f"{'level':>5}" + (f" {other.name:>8}" if other else "") + "  supported protocols"
        click.echo(f"\n{area} ({len(subsets)} combinations of {', '.join(protocols)})\n{header}")
        for subset in subsets:
            level = chosen.levels(subset).as_dict()[area]
            line = f"{level:>5}"
            if other is not None:
                theirs = other.levels(subset).as_dict()[area]
                line += f" {theirs:>8}" + ("" if theirs == level else " *")
            click.echo(f"{line}  {','.join(subset) or '(none)'}")


@scoring_group.command("profiles")
def profiles_command() -> None:
    """List the scoring profiles."""
    from mecsa.scoring import load_profile, profile_names

    for name in profile_names():
        click.echo(f"{name:<10} {load_profile(name).description}")


def _profile(name: str) -> Profile:
    from mecsa.scoring import ProfileError, load_profile

    try:
        return load_profile(name)
    except ProfileError as exc:
        usage_error(str(exc))
