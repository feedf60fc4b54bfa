"""Which lenet_cpp modules a piece of code imports, read from its source (nothing is run).

The Snakefile derives each rule's code inputs from this (``code_files``), so editing any
module a job really uses reruns the job, and a module it does not use does not; the tests
use ``import_graph`` to check that no module imports another that imports it back.

Every import statement counts, also inside functions (lazy imports run too); imports under
``if TYPE_CHECKING:`` count only with ``type_only=True``. ``lenet_cpp`` itself (the package's
``__init__``) stands for the compiled extension ``lenet_cpp._C``, which it loads on first use.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

__all__ = [
    "EXTENSION",
    "PACKAGE",
    "code_files",
    "import_circles",
    "import_graph",
    "imported_modules",
    "module_file",
]

PACKAGE = "lenet_cpp"
#: The compiled module (no Python source; ``code_files`` reports it by this name).
EXTENSION = f"{PACKAGE}._C"
_PACKAGE_DIR = Path(__file__).resolve().parent


def module_file(module: str, package_dir: Path = _PACKAGE_DIR) -> Path | None:
    """The source file of a lenet_cpp module (None for the extension)."""
    if module == PACKAGE:
        return package_dir / "__init__.py"
    if module == EXTENSION:
        return None
    return package_dir / (module.removeprefix(PACKAGE + ".").replace(".", "/") + ".py")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST, type_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, skipping ``if TYPE_CHECKING:`` bodies unless ``type_only``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test) and not type_only:
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _absolute(node: ast.ImportFrom, importer: str) -> str:
    """The module a ``from ... import`` names, made absolute."""
    if node.level == 0:
        return node.module or ""
    # a package's __init__ is its own package; a module's package is its parent
    is_package = importer == PACKAGE
    parts = importer.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _targets(node: ast.Import | ast.ImportFrom, importer: str, package_dir: Path) -> set[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        module = _absolute(node, importer)
        names = []
        for alias in node.names:
            sub = f"{module}.{alias.name}"
            is_module = sub == EXTENSION or (
                (path := module_file(sub, package_dir)) is not None and path.is_file()
            )
            names.append(sub if is_module else module)
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def imported_modules(
    path: str | os.PathLike[str],
    *,
    importer: str = "__main__",
    type_only: bool = False,
    package_dir: Path = _PACKAGE_DIR,
) -> set[str]:
    """The lenet_cpp modules the Python file ``path`` imports directly."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in _statements(tree, type_only):
        found |= _targets(node, importer, package_dir)
    found.discard(importer)
    return found


def _module_name(path: Path, package_dir: Path) -> str:
    rel = path.relative_to(package_dir).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PACKAGE, *parts])


def import_graph(
    *, type_only: bool = True, package_dir: Path = _PACKAGE_DIR
) -> dict[str, set[str]]:
    """Module -> the lenet_cpp modules it imports, for every module of the package."""
    graph = {}
    for path in sorted(package_dir.rglob("*.py")):
        name = _module_name(path, package_dir)
        graph[name] = imported_modules(
            path, importer=name, type_only=type_only, package_dir=package_dir
        )
    return graph


def code_files(
    *scripts: str | os.PathLike[str], package_dir: Path = _PACKAGE_DIR
) -> tuple[list[Path], bool]:
    """The package sources that ``scripts`` run, and whether they load the extension.

    Follows imports transitively (type-only imports excluded). The files are sorted and
    include ``lenet_cpp/__init__.py`` whenever any module of the package is used.
    """
    graph = import_graph(type_only=False, package_dir=package_dir)
    pending: list[str] = []
    for script in scripts:
        pending += imported_modules(script, package_dir=package_dir)
    seen: set[str] = set()
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            pending += graph.get(module, set())
    files = {module_file(m, package_dir) for m in seen}
    if seen:
        files.add(module_file(PACKAGE, package_dir))
    return sorted(f for f in files if f is not None), EXTENSION in seen


def import_circles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (sorted lists).

    The strongly connected components of ``graph`` with more than one module, plus any
    module that imports itself; empty when the graph has no circle.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                circles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(circles)
