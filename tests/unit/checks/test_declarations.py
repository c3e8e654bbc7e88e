"""Findings are declared once, in their check's module, and a check emits only what it declares."""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path

from mecsa.checks.base import declared_kinds
from mecsa.checks.permx import TransportKinds
from mecsa.checks.registry import CHECKS, finding_kinds, remedies
from mecsa.demo import assess_demo
from mecsa.fixes import has_fix
from mecsa.model import FindingKind

CHECKS_DIR = Path(inspect.getfile(importlib.import_module("mecsa.checks.base"))).parent


def _kinds_in(value: object) -> Iterator[FindingKind]:
    if isinstance(value, FindingKind):
        yield value
    elif isinstance(value, TransportKinds):
        yield from value.all()
    elif isinstance(value, dict):
        for v in value.values():
            yield from _kinds_in(v)
    elif isinstance(value, tuple):
        for v in value:
            yield from _kinds_in(v)


def test_every_kind_a_check_module_defines_is_in_its_catalogue() -> None:
    for check in CHECKS:
        module = importlib.import_module(check.evaluate.__module__)
        defined = {k for v in vars(module).values() for k in _kinds_in(v)}
        assert defined, check.name
        assert defined - set(check.findings) == set(), check.name


def test_a_kind_belongs_to_its_checks_protocols() -> None:
    for check in CHECKS:
        allowed = set(check.protocols) or {check.name}
        assert {k.protocol for k in declared_kinds(check)} <= allowed, check.name


def test_an_id_is_declared_once_per_status() -> None:
    pairs = [(k.id, k.status) for k in finding_kinds()]
    # the crash findings of a check with two protocols share an id, one per protocol
    pairs = [p for p in pairs if not p[0].endswith(".check_error")]
    assert len(pairs) == len(set(pairs))


def test_every_declared_remedy_has_a_fix_builder() -> None:
    builders = remedies()
    missing = sorted({k.remedy for k in finding_kinds() if k.remedy and not has_fix(k.remedy, builders)})
    assert missing == []


def test_no_check_module_builds_a_finding_by_hand() -> None:
    # Findings come from declared kinds only (`KIND(message, evidence, subject)`).
    offenders = []
    for path in sorted(CHECKS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Finding":
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


async def test_an_assessment_emits_only_declared_findings() -> None:
    declared = {(k.id, k.status, k.protocol, k.remedy) for k in finding_kinds()}
    assessment = await assess_demo(dns_timeout=0.5, smtp_timeout=0.5)
    emitted = {(f.id, f.status, f.protocol, f.remediation) for f in assessment.findings}
    assert len(emitted) > 10
    assert emitted - declared == set()
