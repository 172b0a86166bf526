"""No import cycles among the project's modules, counting the imports inside functions too
(a lazy import still ties two modules together), and the layering of plug-ins and machinery:

- ``probes.tasks.<task>`` (probe plug-ins) use the probe machinery at ``probes`` top level;
  the machinery never imports a plug-in (``probes.registry`` finds them by task name).
- ``training.foreign`` (fetch, find and import foreign checkpoints; the fixture generator) sits
  beside the training engine: only the CLI imports it, plus the text task's use of the
  fixtures' word-level tokenizer builder.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("curriculens", "models", "training", "probes", "dashboard")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (``from a.b import c`` names ``a.b.c`` when that
    is a module, else ``a.b``; the parent packages an import runs are not edges)."""
    mods = _modules()

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else [node.module, *subs]
            for t in targets:
                o = owner(t)
                if o is not None and o != mod:
                    graph[mod].add(o)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50 and "training.loop" in graph["training.plans.base"]  # it sees the project
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def _edges_into(graph: dict[str, set[str]], prefix: str) -> set[tuple[str, str]]:
    """(importer, imported) for imports of ``prefix`` modules from outside ``prefix``."""
    inside = lambda m: m == prefix or m.startswith(prefix + ".")  # noqa: E731
    return {(m, t) for m, ts in graph.items() if not inside(m) for t in ts if inside(t)}


def test_probe_machinery_never_imports_a_task_plugin():
    graph = import_graph()
    assert "probes.tasks.parity.maths" in graph["probes.tasks.parity.fourier"]  # it sees the plug-ins
    assert _edges_into(graph, "probes.tasks") == set()


def test_foreign_checkpoints_are_imported_only_by_the_cli():
    graph = import_graph()
    allowed = {("training.tasks.text", "training.foreign.fixtures")}
    outside = {(m, t) for m, t in _edges_into(graph, "training.foreign") if not m.startswith("curriculens.cli")}
    assert outside <= allowed, f"unexpected imports of training.foreign: {sorted(outside - allowed)}"
