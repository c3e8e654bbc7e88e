"""Collect every remediation key the registered checks can put on a finding, from their source.

Checks pass keys in many ways (a `Finding(...)` argument, a helper's argument, a table, a
conditional), so two nets are cast and joined:
- the AST: the sixth positional argument or a `remediation=`-like keyword of any call, as a string
  constant or a module-level string constant;
- every string constant shaped like `protocol.action` whose prefix is a protocol (or `tls`) and
  which is not a finding id of any check's catalogue.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

from mecsa.checks.registry import CHECKS, finding_catalogue
from mecsa.model import PROTOCOLS

REMEDIATION_PARAMS = ("remediation", "remedy", "fix", "remediation_key")
KEY_SHAPE = re.compile(r"^[a-z][a-z0-9_-]*\.[a-z0-9_]+$")
KEY_PREFIXES = frozenset(
    (*PROTOCOLS, "mx", "tls", "mta_sts", "tls_rpt", *(p.replace("-", "_") for p in PROTOCOLS))
)
FINDING_REMEDIATION_POSITION = 5  # Finding(id, status, protocol, message, evidence, remediation, subject)


def check_module_files() -> list[Path]:
    """The source files of every registered check (plus modules in a check's package)."""
    files: set[Path] = set()
    for check in CHECKS:
        module = importlib.import_module(check.evaluate.__module__)
        files.add(Path(inspect.getfile(module)))
        observe_module = importlib.import_module(check.observe.__module__)
        files.add(Path(inspect.getfile(observe_module)))
    return sorted(files)


def _constant(node: ast.expr, names: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id)
    return None


def _keys_in(tree: ast.Module) -> Iterator[str]:
    names = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if func == "Finding" and len(node.args) > FINDING_REMEDIATION_POSITION:
            key = _constant(node.args[FINDING_REMEDIATION_POSITION], names)
            if key:
                yield key
        for keyword in node.keywords:
            if keyword.arg in REMEDIATION_PARAMS:
                key = _constant(keyword.value, names)
                if key:
                    yield key


def _shaped_constants(tree: ast.Module, finding_ids: set[str]) -> Iterator[str]:
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if (
            KEY_SHAPE.match(node.value)
            and node.value not in finding_ids
            and node.value.split(".")[0] in KEY_PREFIXES
        ):
            yield node.value


def remediation_keys() -> dict[str, list[str]]:
    """Key -> the check files that use it."""
    finding_ids = set(finding_catalogue())
    found: dict[str, list[str]] = {}
    for path in check_module_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for key in {*_keys_in(tree), *_shaped_constants(tree, finding_ids)}:
            found.setdefault(key, []).append(path.name)
    return found
