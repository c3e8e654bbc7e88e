"""The layer rule, checked on the imports themselves (see docs/architecture.md).

Every import of one mecsa package by another must point down the layer table; no module takes part
in an import cycle (late imports inside functions count: they must not dodge a cycle); and no
check module imports another check module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from mecsa.checks.registry import CHECKS

SRC = Path(__file__).resolve().parents[2] / "src" / "mecsa"

# Lowest first. A package may import only packages of a lower layer (and itself).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "privatefile"),  # privatefile: the per-user cache files, on what the interpreter has
    ("model", "domain", "codecache"),
    ("regexcache", "helpcache", "importcache"),  # regexcache shares codecache's file handling
    ("dns", "pkix"),
    ("records", "certs", "revocation"),
    ("spf", "orgdomain", "probes", "harden"),
    ("observe",),
    ("fixes",),
    ("checks",),
    ("scoring",),
    ("assess", "report", "store"),
    ("mailmode", "demo", "scan", "reports"),
    ("lab", "distributed", "monitor"),
    ("web",),  # its pages show the monitor's watch list and alerts
    ("cli",),
    ("command",),  # the entry point: mecsa.cli imported with the collector off
    ("__main__",),
)
LAYER_OF = {package: i for i, names in enumerate(LAYERS) for package in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines under `if TYPE_CHECKING:` (annotations only, never executed)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(path: Path) -> Iterator[str]:
    """Every mecsa module a file imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("mecsa"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if not base.startswith("mecsa"):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (
                    candidate
                    if (SRC.parent / Path(*candidate.split("."))).with_suffix(".py").exists()
                    or (SRC.parent / Path(*candidate.split(".")) / "__init__.py").exists()
                    else base
                )


def top_package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def graph() -> dict[str, set[str]]:
    return {module_name(p): set(imports_of(p)) - {module_name(p)} for p in sorted(SRC.rglob("*.py"))}


def test_every_package_has_a_layer() -> None:
    packages = {top_package(m) for m in graph()}
    assert sorted(packages - set(LAYER_OF)) == []


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """The imports that do not point to a lower layer (or stay inside their package)."""
    return sorted(
        f"{module} -> {target}"
        for module, targets in edges.items()
        for target in targets
        if top_package(target) != top_package(module)
        and LAYER_OF.get(top_package(target), 99) >= LAYER_OF.get(top_package(module), -1)
    )


def import_cycles(edges: dict[str, set[str]]) -> list[str]:
    """Each import cycle found by a depth-first walk, as `a -> b -> a`."""
    known = set(edges)

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    adjacency = {m: {r for t in ts if (r := resolve(t)) and r != m} for m, ts in edges.items()}
    cycles: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(adjacency.get(node, ())):
            # A module's own package __init__ runs on the way to it: not a cycle of its making.
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for module in sorted(adjacency):
        if module not in state:
            visit(module, [])
    return cycles


def test_imports_point_down_the_layers() -> None:
    assert upward_imports(graph()) == []


def test_no_import_cycle() -> None:
    assert import_cycles(graph()) == []


def test_no_check_imports_another_check() -> None:
    check_modules = {c.evaluate.__module__ for c in CHECKS}
    edges = graph()
    crossing = sorted(f"{m} -> {t}" for m in check_modules for t in edges[m] if t in check_modules and t != m)
    assert crossing == []
    assert len(check_modules) == len(CHECKS)


def test_the_checkers_find_what_they_look_for() -> None:
    # A probe importing a check points up; two modules importing each other form a cycle.
    edges = {
        "mecsa.probes.smtp": {"mecsa.checks.dane"},
        "mecsa.checks.dane": {"mecsa.probes.smtp"},
        "mecsa.lab.a": {"mecsa.lab.b"},
        "mecsa.lab.b": {"mecsa.lab.a"},
    }
    assert upward_imports(edges) == ["mecsa.probes.smtp -> mecsa.checks.dane"]
    assert import_cycles(edges) == [
        "mecsa.checks.dane -> mecsa.probes.smtp -> mecsa.checks.dane",
        "mecsa.lab.a -> mecsa.lab.b -> mecsa.lab.a",
    ]
