"""The arrows point inward: pages → components → services → domain; db/ and geo/ serve services.

Read from the source (every import, function-local ones included), not from a running interpreter, so
an arrow turned outward fails here whether or not the line ever runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("components", "db", "demo", "domain", "geo", "pages", "services", "bench", "api")

#: (importer layer, imported prefix) pairs that must not exist, with why.
FORBIDDEN = [
    ("domain", "services", "domain rules are pure: no store, no use cases"),
    ("domain", "db", "domain rules are pure: no store"),
    ("domain", "components", "domain rules are pure: no widgets"),
    ("domain", "pages", "domain rules are pure"),
    ("domain", "demo", "domain rules are pure"),
    ("domain", "geo", "the domain is handed metres; geo/ does space"),
    ("domain", "streamlit", "domain rules are pure: no UI"),
    ("domain", "sqlalchemy", "domain rules are pure: no ORM"),
    ("domain", "pyproj", "the domain is handed metres; projections live in geo/"),
    ("domain", "geopandas", "the domain is handed plain data"),
    ("services", "components", "services never reach up into widgets"),
    ("services", "pages", "services never reach up into pages"),
    ("services", "demo", "a county's store has no demo: services must not need it"),
    ("services", "streamlit", "services run without a UI (jobs, API, bench)"),
    ("db", "services", "the store serves services, not the other way"),
    ("db", "components", "the store knows no widgets"),
    ("db", "pages", "the store knows no pages"),
    ("db", "demo", "the store knows no demo"),
    ("geo", "services", "geometry serves services"),
    ("geo", "components", "geometry knows no widgets"),
    ("geo", "pages", "geometry knows no pages"),
    ("geo", "db", "geometry is plain frames"),
    ("pages", "db", "pages write through store.uow() and read through store.reader()"),
    ("components", "db", "only components/store.py holds the engine"),
    ("pages", "sqlalchemy", "no SQL in pages"),
    ("api", "components", "the HTTP adapter calls services, never widgets"),
    ("api", "pages", "the HTTP adapter calls services, never pages"),
    ("api", "demo", "a county's store has no demo"),
    ("api", "streamlit", "the API runs without a UI"),
    ("api", "db", "the API reaches the store only through services"),
]
#: The one module of pages/ and components/ allowed into db/.
STORE_MODULE = "components.store"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    """Every module ``path`` imports (first-party resolved to modules, third-party by top name)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")[: -node.level]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    return out


def import_graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {mod: _imports(path, mod, known) for mod, path in sources.items()}


def _hits(imported: str, prefix: str) -> bool:
    return imported == prefix or imported.startswith(prefix + ".")


def outward_arrows(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for mod, targets in sorted(graph.items()):
        layer = mod.split(".")[0]
        for target in sorted(targets):
            for importer, prefix, why in FORBIDDEN:
                if layer == importer and _hits(target, prefix) and mod != STORE_MODULE:
                    found.append(f"{mod} → {target}: {why}")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), first-party only."""
    nodes = set(graph)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v] & nodes):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def test_no_arrow_points_outward():
    assert outward_arrows(import_graph()) == []


def test_no_import_circle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(
    ("module", "imports", "expected"),
    [
        ("domain.risk", {"services.events"}, "domain.risk → services.events"),
        ("domain.planner", {"pyproj"}, "domain.planner → pyproj"),
        ("services.events", {"demo.vocab"}, "services.events → demo.vocab"),
        ("pages.events", {"db.engine"}, "pages.events → db.engine"),
        ("components.maps", {"db.models"}, "components.maps → db.models"),
    ],
)
def test_an_arrow_turned_outward_is_caught(module, imports, expected):
    graph = {module: imports}
    assert any(line.startswith(expected) for line in outward_arrows(graph))


def test_the_store_module_alone_may_hold_the_engine():
    assert outward_arrows({"components.store": {"db.engine", "db.uow"}}) == []


def test_a_circle_is_caught():
    graph = {"services.a": {"services.b"}, "services.b": {"services.c"}, "services.c": {"services.a"}}
    assert cycles(graph) == [["services.a", "services.b", "services.c"]]
