"""The lab's layer rule, read from its source with `ast`: plan -> builders -> runner, and no circle.

- plan level: pure data (scenarios, the plan of nodes/names/addresses, the state file, the list of
  programs); imports no builder and no runner module;
- builders: write zones, keys, certificates and configurations, and say what to start;
- runner: namespaces, processes, and what runs inside a lab that is up (sending mail);
- programs: the small servers the runner starts with `python -m` (they import nothing of the lab).

Every import of a lab module from a lab module sits at the top of the file: a late import is
how a circle hides, so none is allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[3] / "src" / "mecsa" / "lab"

PROGRAMS, PLAN, BUILDERS, RUNNER = 0, 1, 2, 3
LAYERS = {
    "logsink": PROGRAMS,
    "web": PROGRAMS,
    "scenario": PLAN,
    "state": PLAN,
    "programs": PLAN,
    "plan": PLAN,
    "daemon": BUILDERS,
    "ca": BUILDERS,
    "zones": BUILDERS,
    "knot": BUILDERS,
    "unbound": BUILDERS,
    "postfix": BUILDERS,
    "milters": BUILDERS,
    "mxconfig": BUILDERS,
    "senders": BUILDERS,
    "receiver": BUILDERS,
    "revocation": BUILDERS,
    "build": BUILDERS,
    "netns": RUNNER,
    "runner": RUNNER,
    "mailflow": RUNNER,
}


def lab_modules() -> set[str]:
    return {p.stem for p in LAB.glob("*.py") if p.stem != "__init__"}


def lab_imports(source: str, modules: set[str]) -> list[tuple[str, bool]]:
    """(imported lab module, at top level?) for every import of a lab module in `source`."""
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module == "mecsa.lab":
                names = [a.name for a in node.names if a.name in modules]
            elif node.module.startswith("mecsa.lab."):
                names = [node.module.split(".")[2]]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[2] for a in node.names if a.name.startswith("mecsa.lab.")]
        found += [(name, id(node) in top) for name in names]
    return found


def import_graph() -> dict[str, set[str]]:
    modules = lab_modules()
    return {
        m: {name for name, _ in lab_imports((LAB / f"{m}.py").read_text(), modules)} for m in sorted(modules)
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` as a path [a, b, ..., a], or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            cycle = visit(target, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_every_lab_module_has_a_layer() -> None:
    assert lab_modules() == set(LAYERS), "give each new lab module its layer in LAYERS"


def test_lab_imports_have_no_cycle() -> None:
    assert find_cycle(import_graph()) is None


def test_plan_level_modules_import_no_builder_or_runner_module() -> None:
    graph = import_graph()
    for module, layer in LAYERS.items():
        if layer <= PLAN:
            above = sorted(t for t in graph[module] if LAYERS[t] > PLAN)
            assert above == [], f"{module} (plan level) imports {above}"


def test_lab_imports_point_down_or_sideways_only() -> None:
    graph = import_graph()
    upward = [(m, t) for m, targets in graph.items() for t in targets if LAYERS[t] > LAYERS[m]]
    assert upward == []


def test_programs_run_in_the_lab_import_nothing_of_it() -> None:
    graph = import_graph()
    assert {m: graph[m] for m, layer in LAYERS.items() if layer == PROGRAMS} == {
        "logsink": set(),
        "web": set(),
    }


def test_no_lab_module_imports_a_lab_module_late() -> None:
    modules = lab_modules()
    late = [
        (m, name)
        for m in sorted(modules)
        for name, top_level in lab_imports((LAB / f"{m}.py").read_text(), modules)
        if not top_level
    ]
    assert late == []


def test_node_names_are_spelled_only_in_the_plan() -> None:
    """ "web" is left out: it is also the name of the lab directory's web/ subdirectory."""
    names = {"br", "dns", "res", "cli", "snd", "rcv", "snm", "sns"}
    spelled = sorted(
        (p.stem, node.value)
        for p in LAB.glob("*.py")
        if p.stem != "plan"
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Constant) and node.value in names
    )
    assert spelled == []


# --- the checker itself can fail --------------------------------------------------------------


def test_find_cycle_reports_a_circle_through_three_modules() -> None:
    graph = {"plan": {"receiver"}, "receiver": {"build"}, "build": {"plan"}, "zones": set()}
    assert find_cycle(graph) == ["build", "plan", "receiver", "build"]


def test_find_cycle_accepts_a_diamond() -> None:
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from mecsa.lab.plan import NET\n", [("plan", True)]),
        ("from mecsa.lab import knot, zones\n", [("knot", True), ("zones", True)]),
        ("import mecsa.lab.netns\n", [("netns", True)]),
        ("def f():\n    from mecsa.lab.receiver import NODES\n", [("receiver", False)]),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mecsa.lab.build import Daemon\n",
            [("build", False)],
        ),
        ("from mecsa.harden.records import split_txt\n", []),
    ],
)
def test_lab_imports_finds_top_level_late_and_type_checking_imports(
    source: str, expected: list[tuple[str, bool]]
) -> None:
    assert lab_imports(source, {"plan", "knot", "zones", "netns", "receiver", "build"}) == expected
