"""The package's structure: no import circles, a lazily loaded extension, a stub that matches
the extension, and code inputs of the rules derived from what the scripts import."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lenet_cpp
from lenet_cpp import _C
from lenet_cpp.imports import EXTENSION, code_files, import_circles, import_graph

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "lenet_cpp" / "_C.pyi"
PURE_PYTHON = (
    "layout",
    "setting",
    "datasets",
    "idx",
    "loading",
    "acquire",
    "plotting",
    "results",
    "imports",
    "synthetic",
    "style",
    "tables",
    "paper",
)


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = import_graph(type_only=True)  # every import, also the ones only for type checking
    assert {"lenet_cpp.job", "lenet_cpp.seeds", "lenet_cpp.results"} <= set(graph)
    assert import_circles(graph) == []


def test_import_circles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert import_circles(graph) == [["a", "b", "c"], ["e"]]


def test_results_and_plotting_never_call_back_into_the_job() -> None:
    graph = import_graph(type_only=False)
    readers = ("results", "plotting", "setting", "style", "tables", "paper")
    for module in (f"lenet_cpp.{name}" for name in readers):
        assert not {"lenet_cpp.job", "lenet_cpp.seeds", "lenet_cpp.cli"} & graph[module], module


def test_pure_python_modules_work_without_the_extension() -> None:
    blocked = "import sys; sys.modules['lenet_cpp._C'] = None  # importing it now fails\n"
    imports = "".join(f"import lenet_cpp.{name}\n" for name in PURE_PYTHON)
    check = "import lenet_cpp\nprint(lenet_cpp.__version__)"
    done = subprocess.run(
        [sys.executable, "-c", blocked + imports + check],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    failing = subprocess.run(
        [sys.executable, "-c", blocked + "import lenet_cpp\nlenet_cpp.train"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failing.returncode != 0 and "lenet_cpp._C" in failing.stderr


def test_layout_and_setting_load_neither_torch_nor_the_extension() -> None:
    code = "import sys, lenet_cpp.layout, lenet_cpp.setting, lenet_cpp.imports\n"
    code += "print(sorted(m for m in ('torch', 'lenet_cpp._C') if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_extension_imports_on_its_own() -> None:
    """``import lenet_cpp._C`` in a fresh interpreter loads torch first (it links libtorch)."""
    code = "import lenet_cpp._C as c, sys; print(c.train.__name__, 'torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["train", "True"]


def test_the_package_exposes_the_extension_lazily() -> None:
    assert lenet_cpp.train is _C.train and lenet_cpp.LeNet5 is _C.LeNet5
    assert set(lenet_cpp.__all__) - {"__version__"} <= set(dir(lenet_cpp))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = lenet_cpp.nope  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the stub


def _public(names: list[str]) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def _stub_members() -> dict[str, set[str]]:
    """Top-level public names of the stub -> the public members of each class."""
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    members: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names = [n.name for n in node.body if isinstance(n, ast.FunctionDef)]
            members[node.name] = _public(names) | ({"__call__"} & set(names))
        elif isinstance(node, ast.FunctionDef):
            members[node.name] = set()
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            members[node.target.id] = set()
    return {name: m for name, m in members.items() if not name.startswith("_")}


def _module_members() -> dict[str, set[str]]:
    members: dict[str, set[str]] = {}
    for name in _public(dir(_C)):
        value = getattr(_C, name)
        if inspect.isclass(value):
            own = _public([n for n in vars(value) if not n.startswith("_pybind11")])
            members[name] = own | ({"__call__"} & set(vars(value)))
        else:
            members[name] = set()
    return members


def test_the_stub_names_exactly_the_extensions_public_api() -> None:
    assert _stub_members() == _module_members()


@pytest.mark.parametrize("function", ["train", "normalize", "tune_allocator", "distort"])
def test_the_stubs_arguments_match_the_extensions(function: str) -> None:
    # pybind11's docstring starts with the signature: "train(data: object, ..., *, ...) -> ..."
    signature = getattr(_C, function).__doc__.splitlines()[0]
    actual = re.findall(r"[(,] ?(\w+):", signature.split(") ->")[0])
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    (stub,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    assert [a.arg for a in stub.args.args + stub.args.kwonlyargs] == actual
    assert ("*," in signature) == bool(stub.args.kwonlyargs)


# ---------------------------------------------------------------- code inputs of the rules


def test_code_inputs_follow_the_scripts_imports() -> None:
    def names(script: str) -> tuple[set[str], bool]:
        files, extension = code_files(ROOT / "scripts" / script)
        return {f.name for f in files}, extension

    plot, plot_needs_extension = names("plot_setting.py")
    assert {"plotting.py", "results.py", "layout.py", "__init__.py"} <= plot
    assert "job.py" not in plot and not plot_needs_extension
    train, train_needs_extension = names("train.py")
    assert {"job.py", "seeds.py", "setting.py", "integrity.py", "loading.py", "idx.py"} <= train
    assert train_needs_extension
    data, data_needs_extension = names("download_data.py")
    assert {"acquire.py", "datasets.py", "integrity.py"} <= data and not data_needs_extension
    assert EXTENSION == "lenet_cpp._C"
