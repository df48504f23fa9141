"""No import circles inside the project's packages.

Every ``import`` statement counts, also the ones inside functions (the lazy imports that keep
TensorFlow out of the serving path): a circle that only closes at call time still means two
modules that cannot be read, tested or moved apart. The graph is read from the source with
``ast``, so nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cvplay", "cvplay_ui")


def module_files(root: Path, package: str) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file of ``package`` under ``root``."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Edges ``module -> modules it imports`` among ``modules`` (absolute and relative imports)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            graph[name].update(target for target in targets if target in modules and target != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_package_has_no_import_circle(package):
    graph = import_graph(module_files(ROOT, package))
    assert len(graph) > 1
    assert circles(graph) == [], f"modules of {package} that import each other in a circle"


def test_cli_evaluate_and_training_share_command_error_without_importing_cli():
    graph = import_graph(module_files(ROOT, "cvplay"))
    for module in ("cvplay.evaluate", "cvplay.training.cli_train", "cvplay.training.trainer", "cvplay.training.export"):
        assert "cvplay.cli" not in graph[module], module
    assert graph["cvplay.errors"] == set()  # a leaf
    from cvplay.cli import CommandError as from_cli
    from cvplay.errors import CommandError

    assert from_cli is CommandError  # still importable from cli.py


def test_the_check_finds_a_circle_closed_by_a_lazy_import(tmp_path):
    package = tmp_path / "loop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from loop import b\n")
    (package / "b.py").write_text("def f():\n    from .c import g\n")
    (package / "c.py").write_text("import loop.a\n")
    (package / "d.py").write_text("from loop import a\n")
    graph = import_graph(module_files(tmp_path, "loop"))
    assert graph["loop.b"] == {"loop.c"}
    assert circles(graph) == [["loop.a", "loop.b", "loop.c"]]
