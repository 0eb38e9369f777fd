"""The package's shape (docs/ARCHITECTURE.md): no import cycle between its modules (imports inside functions
count, `if TYPE_CHECKING:` blocks do not), nothing below the facade imports `scope`, few top-level modules.
The layer order itself is the import-linter contract in pyproject.toml (`lint-imports`)."""

from __future__ import annotations

import ast
from pathlib import Path

import scopewidgets

ROOT = Path(scopewidgets.__file__).parent
PKG = "scopewidgets"
FACADE = {PKG, f"{PKG}.__main__", f"{PKG}.cli", f"{PKG}._cli_atlas", f"{PKG}.testing", f"{PKG}.demo"}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = (PKG, *path.relative_to(ROOT).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules `name` imports anywhere but in `if TYPE_CHECKING:` blocks."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in modules else target)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_sees_imports_inside_functions() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert f"{PKG}.widgets.explorer" in _imports(
        f"{PKG}.scope", ROOT / "scope.py", _modules()
    )  # imported in a method


def test_only_the_facade_imports_scope() -> None:
    importers = sorted(m for m, deps in _graph().items() if f"{PKG}.scope" in deps and m not in FACADE)
    assert not importers, f"below the facade, these import scopewidgets.scope: {importers}"


def test_few_top_level_modules() -> None:
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= 15, top


def test_every_result_finds_its_widget_in_a_fresh_interpreter() -> None:
    """Results never import widgets; importing `scopewidgets.widgets` registers every presenter."""
    import subprocess
    import sys

    probe = (
        "import scopewidgets.widgets\n"
        "from scopewidgets.activations import Activations, ActivationsSet\n"
        "from scopewidgets.checks import SearchResult\n"
        "from scopewidgets.core.display import _REGISTRY\n"
        "from scopewidgets.dashboards import DashboardSet, FeatureDashboard\n"
        "from scopewidgets.steering import Steering\n"
        "wanted = [(Activations, 'widget'), (ActivationsSet, 'widget'), (SearchResult, 'widget'),\n"
        "          (Steering, 'widget'), (DashboardSet, 'widget'), (DashboardSet, 'atlas'),\n"
        "          (FeatureDashboard, 'text'), (FeatureDashboard, 'html'), (Activations, 'text')]\n"
        "print([f'{t.__name__}:{role}' for t, role in wanted if (t, role) not in _REGISTRY])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=ROOT.parent
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]", f"no presenter registered for {run.stdout.strip()}"
