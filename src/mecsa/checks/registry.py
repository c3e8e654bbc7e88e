"""The one explicit list of checks. Adding a check: one module plus one line here.

Everything else about the checks is derived from their declarations: the CLI choices, the finding
catalogue (`mecsa checks`, docs/findings.md), the remediation keys and their fix builders, and the
JSON schema's lists of protocols and findings (`schema_lists`).

A check's module is imported when it is needed (issue 20: start-up): `check_names()` reads the
table below; `selected_checks()` imports the checks an assessment runs; `CHECKS`, every check's
spec, is built on first use (PEP 562 module `__getattr__`). A test keeps the table's names equal to
the specs' own.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mecsa.checks.base import CheckSpec
    from mecsa.fixes import FixBuilder
    from mecsa.model import FindingKind

# (check name, the module whose CHECK is its spec), in registry order.
CHECK_MODULES: tuple[tuple[str, str], ...] = (
    ("mx", "mecsa.checks.mx"),
    ("tls-rpt", "mecsa.checks.tls_rpt"),
    ("dnssec", "mecsa.checks.dnssec"),
    ("mta-sts", "mecsa.checks.mta_sts"),
    ("dmarc", "mecsa.checks.dmarc"),
    ("dkim", "mecsa.checks.dkim"),
    ("spf", "mecsa.checks.spf"),
    ("starttls", "mecsa.checks.starttls"),
    ("x509", "mecsa.checks.x509"),
    ("dane", "mecsa.checks.dane"),
)

# Declared for type checkers; the values are made by `__getattr__` on first use.
CHECKS: tuple[CheckSpec[Any], ...]
PROTOCOL_OWNERS: dict[str, str]


def __getattr__(name: str) -> Any:
    """`CHECKS` (every spec, each module imported) and `PROTOCOL_OWNERS`, built once when first read."""
    if name == "CHECKS":
        value: Any = tuple(_spec(module) for _, module in CHECK_MODULES)
    elif name == "PROTOCOL_OWNERS":
        value = _owners()
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def _spec(module: str) -> CheckSpec[Any]:
    spec: CheckSpec[Any] = importlib.import_module(module).CHECK
    return spec


def all_checks() -> tuple[CheckSpec[Any], ...]:
    """Every check in registry order: `CHECKS`, as loaded, or as a test or a benchmark replaced it."""
    checks: tuple[CheckSpec[Any], ...] | None = globals().get("CHECKS")
    return checks if checks is not None else __getattr__("CHECKS")


def check_names() -> tuple[str, ...]:
    """The checks' names in registry order, without importing a check while `CHECKS` is not built."""
    if "CHECKS" not in globals():
        return tuple(name for name, _ in CHECK_MODULES)
    return tuple(c.name for c in all_checks())


def selected_checks(only: Collection[str] = (), skip: Collection[str] = ()) -> tuple[CheckSpec[Any], ...]:
    """The checks an assessment runs (all, or `only`, less `skip`): only their modules are imported."""

    def chosen(name: str) -> bool:
        return (not only or name in only) and name not in skip

    if "CHECKS" in globals():
        return tuple(c for c in all_checks() if chosen(c.name))
    return tuple(_spec(module) for name, module in CHECK_MODULES if chosen(name))


def finding_kinds() -> tuple[FindingKind, ...]:
    """Every finding any check can emit, its crash findings included, in registry order."""
    from mecsa.checks.base import declared_kinds

    return tuple(k for c in all_checks() for k in declared_kinds(c))


def finding_catalogue() -> dict[str, str]:
    """Every finding id any check can emit, with its meaning: for docs and the JSON schema."""
    out: dict[str, str] = {}
    for kind in finding_kinds():
        out.setdefault(kind.id, kind.meaning)
    return out


def remedies() -> dict[str, FixBuilder]:
    """Every remediation key with its fix builder: the shared ones, plus each check's own."""
    from mecsa.fixes import FIXES

    out: dict[str, FixBuilder] = dict(FIXES)
    for check in all_checks():
        for key, builder in check.remedies.items():
            if key in out:
                raise RuntimeError(f"remediation key {key} defined twice (by {check.name})")
            out[key] = builder
    return out


def owned_protocols() -> tuple[str, ...]:
    """The protocols the checks own, MECSA's order first, then any a newer check adds."""
    from mecsa.model import PROTOCOLS

    owned = [p for c in all_checks() for p in c.protocols]
    return (*(p for p in PROTOCOLS if p in owned), *(p for p in owned if p not in PROTOCOLS))


def schema_lists() -> Mapping[str, list[str]]:
    """The lists the committed JSON schema must hold: protocols (and checks without one) and statuses."""
    protocols = [*owned_protocols(), *(c.name for c in all_checks() if not c.protocols)]
    return {"protocols": protocols, "finding_ids": sorted(finding_catalogue())}


def _owners() -> dict[str, str]:
    owners: dict[str, str] = {}
    for check in all_checks():
        for protocol in check.protocols:
            if protocol in owners:
                raise RuntimeError(f"protocol {protocol} owned by both {owners[protocol]} and {check.name}")
            owners[protocol] = check.name
    return owners
