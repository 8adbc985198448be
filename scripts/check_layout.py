"""Layout rules that CI enforces (`make lint`): no import cycle between modules or between packages, counting
imports inside functions, and no library file over 400 lines.

``usad.export``, ``usad.quantize`` and ``usad.bench`` live in the top-level folders ``export/``, ``quantize/`` and
``bench/``; this script takes that mapping from setup.py's package discovery, so their imports count.

    python scripts/check_layout.py            # exit 1 and one line per violation
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def package_dirs() -> dict[str, Path]:
    """Import name -> folder of every package, from setup.py's discovery (which knows the remapped folders)."""
    sys.path.insert(0, str(ROOT))
    from setup import package_map

    os.chdir(ROOT)
    return {name: ROOT / folder for name, folder in package_map().items()}


def modules() -> dict[str, Path]:
    """Every module of the distribution by dotted name."""
    found: dict[str, Path] = {}
    dirs = package_dirs()
    for package, folder in dirs.items():
        for path in folder.glob("*.py"):
            found[f"{package}.{path.stem}".removesuffix(".__init__")] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the distribution that ``name`` imports anywhere in its file (functions included)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    resolved = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        # Importing a submodule also imports the packages above it; those edges are not design edges.
        if target and target != name and not name.startswith(target + "."):
            resolved.add(target)
    return resolved


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def unit(name: str) -> str:
    """The package-level unit of a module: a subpackage of usad (usad.export, usad.data, ...) or a top module."""
    parts = name.split(".")
    return ".".join(parts[:2])


def main() -> int:
    mods = modules()
    graph = {name: imports_of(name, path, set(mods)) for name, path in mods.items()}
    problems = [f"import cycle between modules: {' <-> '.join(c)}" for c in cycles(graph)]
    units: dict[str, set[str]] = {}
    for name, targets in graph.items():
        if name == "usad":
            continue  # the root package's lazy names (usad.load, ...) are re-exports, not a layer
        units.setdefault(unit(name), set()).update(unit(t) for t in targets if unit(t) not in (unit(name), "usad"))
    problems += [f"import cycle between packages: {' <-> '.join(c)}" for c in cycles(units)]
    for path in sorted(mods.values()):
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            problems.append(f"{path.relative_to(ROOT)}: {lines} lines (> {MAX_LINES}): split it")
    for problem in problems:
        print(problem)
    print(f"layout: {len(mods)} modules, {sum(map(len, graph.values()))} imports, "
          f"{len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
