"""The scoring engine: profiles are data (profiles/*.json); this module only reads and applies them.

Two steps, both pure:
1. `Profile.counted(verdicts)`: which scored protocols count as supported, by the profile's
   counting rule (mecsa-st: a per-MX share of at least 80%; mecsa: the verdict's own status);
2. `Profile.levels(protocols)`: a level from 0 to 10 per area (confidentiality, phishing, integrity).

Two kinds of profile exist. A *table* profile (mecsa-st) joins the area's protocols in the fixed
order and looks the string up in that area's own table (not in one dictionary shared by all areas,
which is mecsa-st's cross-area collision bug). A *weighted* profile (mecsa) adds non-negative
points of monotone terms, which makes it monotonic by construction; the loader also proves that
only the full set of an area reaches 10.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations
from pathlib import Path
from typing import Any

from mecsa.model import SCORED_PROTOCOLS, Assessment, ProtocolVerdict, VerdictStatus

# Beside this module, as the trust anchors and the suffix rules are found: `importlib.resources`
# (tempfile, zipfile, ~4 ms) would be imported by a cold `mecsa assess` for this alone (issue 20).
PROFILES = Path(__file__).with_name("profiles")
AREAS: tuple[str, ...] = ("confidentiality", "phishing", "integrity")
AREA_TITLES: Mapping[str, str] = {
    "confidentiality": "Confidentiality",
    "phishing": "Phishing & identity theft",
    "integrity": "Integrity",
}
MAX_LEVEL = 10
DEFAULT_PROFILE = "mecsa"


class ProfileError(ValueError):
    """A profile that does not exist or whose data is inconsistent."""


@dataclass(frozen=True, slots=True)
class Levels:
    """The level (0..10) of each MECSA area."""

    confidentiality: int
    phishing: int
    integrity: int

    def as_dict(self) -> dict[str, int]:
        return {area: getattr(self, area) for area in AREAS}


def stars(level: int) -> float:
    """MECSA shows level / 2 stars (0 to 5, in halves)."""
    return level / 2


@dataclass(frozen=True, slots=True)
class Counting:
    """How verdicts turn into supported protocols.

    `share_threshold`: when set, a verdict with a per-MX `share` counts when share >= threshold
    (mecsa-st's 80% rule over reachable MX hosts), whatever its status; domain-level verdicts
    (no share) count when they pass. `mta_sts_detail`: a boolean detail on the mta-sts verdict
    that replaces its status (mecsa-st ignores the MTA-STS mode; our own verdict needs enforce).
    """

    share_threshold: float | None = None
    mta_sts_detail: str | None = None
    # protocol -> boolean detail that replaces its status, e.g. mecsa-st counts the DMARC verdicts
    # by RFC 7489's rules (`rfc7489_pass`) whatever discovery the assessment ran first
    detail_verdicts: Mapping[str, str] = field(default_factory=dict)

    def counts(self, verdict: ProtocolVerdict) -> bool:
        if verdict.status is VerdictStatus.NOT_APPLICABLE:
            return False
        if self.mta_sts_detail and verdict.protocol == "mta-sts":
            flag = verdict.details.get(self.mta_sts_detail)
            if isinstance(flag, bool):
                return flag
        detail = self.detail_verdicts.get(verdict.protocol)
        if detail is not None and verdict.status is not VerdictStatus.ERROR:
            flag = verdict.details.get(detail)
            if isinstance(flag, bool):
                return flag
        if self.share_threshold is not None and verdict.share is not None:
            return verdict.share >= self.share_threshold
        return verdict.status is VerdictStatus.PASS


@dataclass(frozen=True, slots=True)
class Term:
    """`points` when every protocol of `all_of` and at least one of `any_of` (if any) is supported."""

    points: int
    all_of: frozenset[str]
    any_of: frozenset[str]

    def holds(self, protocols: frozenset[str]) -> bool:
        return self.all_of <= protocols and (not self.any_of or bool(self.any_of & protocols))


@dataclass(frozen=True, slots=True)
class Area:
    """One area of a profile: its protocols and either a lookup table or weighted terms."""

    name: str
    protocols: tuple[str, ...]
    table: Mapping[str, int] | None = None
    requires: frozenset[str] = frozenset()
    terms: tuple[Term, ...] = ()

    def level(self, supported: frozenset[str]) -> int:
        """The level of this area for the (already prerequisite-filtered) supported protocols."""
        mine = [p for p in SCORED_PROTOCOLS if p in supported and p in self.protocols]
        if self.table is not None:
            # mecsa-st: the protocols joined in the fixed order; a string not in the table gives 0
            return self.table.get(",".join(mine), 0)
        present = frozenset(mine)
        if not self.requires <= present:
            return 0
        return min(MAX_LEVEL, sum(t.points for t in self.terms if t.holds(present)))


@dataclass(frozen=True, slots=True)
class Profile:
    """A scoring profile: counting rule, prerequisites, and one `Area` per MECSA area."""

    name: str
    description: str
    counting: Counting
    prerequisites: Mapping[str, frozenset[str]]
    areas: Mapping[str, Area]
    # how this profile finds DMARC policies: "treewalk" (RFC 9989) or "psl" (RFC 7489, MECSA)
    dmarc_discovery: str = "treewalk"

    def effective(self, protocols: Iterable[str]) -> frozenset[str]:
        """Drop protocols whose prerequisites are missing (x509 counts only with starttls)."""
        given = frozenset(p for p in protocols if p in SCORED_PROTOCOLS)
        return frozenset(p for p in given if self.prerequisites.get(p, frozenset()) <= given)

    def levels(self, protocols: Iterable[str]) -> Levels:
        """The three area levels for a set of supported protocols."""
        present = self.effective(protocols)
        return Levels(**{name: area.level(present) for name, area in self.areas.items()})

    def counted(self, verdicts: Mapping[str, ProtocolVerdict]) -> frozenset[str]:
        """The scored protocols this profile counts as supported, before prerequisites."""
        return frozenset(p for p, v in verdicts.items() if p in SCORED_PROTOCOLS and self.counting.counts(v))


@dataclass(frozen=True, slots=True)
class Score:
    """An assessment's grade under one profile."""

    profile: str
    levels: Levels
    supported: frozenset[str]


def score_assessment(assessment: Assessment, profile: Profile | str = DEFAULT_PROFILE) -> Score:
    """Grade an assessment: count its verdicts under the profile, then look up the levels."""
    chosen = load_profile(profile) if isinstance(profile, str) else profile
    supported = chosen.effective(chosen.counted(assessment.verdicts))
    return Score(chosen.name, chosen.levels(supported), supported)


def profile_names() -> tuple[str, ...]:
    """The names of the built-in profiles, default first."""
    names = sorted(
        entry.name.removesuffix(".json") for entry in PROFILES.iterdir() if entry.name.endswith(".json")
    )
    return (DEFAULT_PROFILE, *(n for n in names if n != DEFAULT_PROFILE))


@cache
def load_profile(name: str) -> Profile:
    """Load a built-in profile by name; `ProfileError` when it does not exist or is inconsistent."""
    if name not in profile_names():
        raise ProfileError(f"unknown scoring profile {name!r}; known: {', '.join(profile_names())}")
    text = (PROFILES / f"{name}.json").read_text("utf-8")
    return parse_profile(json.loads(text))


def parse_profile(data: Mapping[str, Any]) -> Profile:
    """Build and validate a profile from its JSON data."""
    name = str(data["name"])
    kind = data["kind"]
    counting = data.get("counting", {})
    prerequisites = {
        p: frozenset(_protocols(reqs, name)) for p, reqs in data.get("prerequisites", {}).items()
    }
    _protocols(prerequisites, name)
    areas_data = data["areas"]
    if set(areas_data) != set(AREAS):
        raise ProfileError(f"profile {name}: areas must be exactly {', '.join(AREAS)}")
    if kind == "table":
        areas = {a: _table_area(a, areas_data[a], name) for a in AREAS}
    elif kind == "weighted":
        areas = {a: _weighted_area(a, areas_data[a], name) for a in AREAS}
    else:
        raise ProfileError(f"profile {name}: unknown kind {kind!r}")
    profile = Profile(
        name,
        str(data.get("description", "")),
        Counting(
            counting.get("share_threshold"),
            counting.get("mta_sts_detail"),
            {str(p): str(d) for p, d in counting.get("detail_verdicts", {}).items()},
        ),
        prerequisites,
        areas,
        _dmarc_discovery(data.get("dmarc_discovery", "treewalk"), name),
    )
    if kind == "weighted":
        _check_top_needs_everything(profile)
    return profile


def _dmarc_discovery(value: object, profile: str) -> str:
    if value not in ("treewalk", "psl"):
        raise ProfileError(f"profile {profile}: dmarc_discovery must be treewalk or psl, not {value!r}")
    return str(value)


def _protocols(names: Iterable[str], profile: str) -> list[str]:
    out = list(names)
    unknown = [p for p in out if p not in SCORED_PROTOCOLS]
    if unknown:
        raise ProfileError(f"profile {profile}: unknown protocols {unknown}")
    return out


def _table_area(area: str, data: Mapping[str, Any], profile: str) -> Area:
    protocols = tuple(_protocols(str(data["protocols"]).split(","), profile))
    table: dict[str, int] = {}
    for key, combos in data.items():
        if key == "protocols":
            continue
        level = int(key)
        if not 1 <= level <= MAX_LEVEL:
            raise ProfileError(f"profile {profile}, {area}: level {key} out of range")
        for combo in combos:
            _protocols(combo.split(","), profile)
            # a string listed twice within one area: the higher level counts, as in mecsa-st
            table[combo] = max(level, table.get(combo, 0))
    return Area(area, protocols, table=table)


def _weighted_area(area: str, data: Mapping[str, Any], profile: str) -> Area:
    protocols = tuple(_protocols(data["protocols"], profile))
    terms: list[Term] = []
    for raw in data["terms"]:
        points = int(raw["points"])
        if points < 0:  # a negative weight could make adding a protocol lower the level
            raise ProfileError(f"profile {profile}, {area}: negative points break monotonicity")
        all_of = frozenset(_protocols(raw.get("all_of", ()), profile))
        any_of = frozenset(_protocols(raw.get("any_of", ()), profile))
        if not (all_of | any_of) <= set(protocols):
            raise ProfileError(f"profile {profile}, {area}: a term names a protocol outside the area")
        terms.append(Term(points, all_of, any_of))
    requires = frozenset(_protocols(data.get("requires", ()), profile))
    return Area(area, protocols, requires=requires, terms=tuple(terms))


def _check_top_needs_everything(profile: Profile) -> None:
    """The full set reaches 10, and dropping any one protocol falls below it.

    Levels are monotonic, so every set missing protocol p scores at most the full set minus p:
    checking those n sets proves that 10 needs every protocol of the area.
    """
    for name, area in profile.areas.items():
        full = frozenset(area.protocols)
        if profile.levels(full).as_dict()[name] != MAX_LEVEL:
            raise ProfileError(f"profile {profile.name}, {name}: the full set does not reach {MAX_LEVEL}")
        for missing in combinations(area.protocols, len(area.protocols) - 1):
            if profile.levels(missing).as_dict()[name] >= MAX_LEVEL:
                raise ProfileError(
                    f"profile {profile.name}, {name}: {MAX_LEVEL} without {sorted(full - set(missing))}"
                )


def all_subsets() -> list[tuple[str, ...]]:
    """All 1024 subsets of the scored protocols, each in the fixed join order; smaller sets first."""
    n = len(SCORED_PROTOCOLS)
    subsets = [tuple(p for i, p in enumerate(SCORED_PROTOCOLS) if mask >> i & 1) for mask in range(1 << n)]
    return sorted(subsets, key=lambda s: (len(s), [SCORED_PROTOCOLS.index(p) for p in s]))
