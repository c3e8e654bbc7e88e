"""What a check is.

A check is one module exposing a `CHECK = CheckSpec(...)`: its name, the MECSA protocols it
owns, its observation step (`observe`, async: asks the observation layer, `mecsa.observe`), its
pure `evaluate`, the findings it declares (`FindingKind`s) and any fix builders of its own. The
registry lists the specs; the CLI choices, the finding catalogue, the docs, the remediation keys
and the JSON schema's lists are derived from them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from mecsa.model import CheckResult, FactsKind, FindingKind, Status
from mecsa.observe import Context

if TYPE_CHECKING:  # the fixes (their texts and builders) are imported by the views that show them
    from mecsa.fixes import FixBuilder

ObsT = TypeVar("ObsT")


@dataclass(frozen=True, slots=True)
class CheckSpec(Generic[ObsT]):
    """One check: `observe` gathers observations, `evaluate` judges them; `findings` are its declarations.

    `remedies` maps remediation keys that only this check uses to their fix builders (see
    `mecsa.fixes`); shared fixes (a DNS record, a Postfix setting) live in `mecsa.fixes.FIXES`.

    `facts` is the kind of the typed facts its results carry (`CheckResult.facts`, whose JSON form
    is the check's `details`), and `verdict_facts` the kind of each verdict's facts by protocol: the
    one declaration from which a stored document's details are read back (`mecsa.web.document`).
    """

    name: str
    summary: str
    protocols: tuple[str, ...]
    observe: Callable[[Context], Awaitable[ObsT]]
    evaluate: Callable[[ObsT], CheckResult]
    findings: tuple[FindingKind, ...] = ()
    remedies: Mapping[str, FixBuilder] = field(default_factory=dict)
    facts: FactsKind | None = None
    verdict_facts: Mapping[str, FactsKind] = field(default_factory=dict)


def crash_kinds(check: CheckSpec[ObsT]) -> tuple[FindingKind, ...]:
    """The findings a check gives when it crashes or overruns its deadline: one per protocol it owns."""
    meaning = "the check crashed or overran its deadline: could not find out"
    return tuple(
        FindingKind(f"{check.name}.check_error", Status.ERROR, p, meaning)
        for p in check.protocols or (check.name,)
    )


def declared_kinds(check: CheckSpec[ObsT]) -> tuple[FindingKind, ...]:
    """Every finding the check can emit: its declarations, then its crash findings."""
    return (*check.findings, *crash_kinds(check))
