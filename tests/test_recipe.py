"""Offline checks of the conda packaging: recipe/recipe.yaml, recipe/meta.yaml, environment.yml.

recipe.yaml is parsed strictly and rendered for every variant with py-rattler-build (no channel
is contacted: rendering does not solve). meta.yaml is rendered with jinja2 and stand-ins for
conda-build's functions, then compared with recipe.yaml so the two recipes cannot drift.
Neither proves that conda-forge's packages resolve: that needs a channel (see README).
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

rattler_build = pytest.importorskip(
    "rattler_build",
    reason="py-rattler-build is not installed (pip install py-rattler-build)",
)
yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read meta.yaml/environment.yml")
jinja2 = pytest.importorskip("jinja2", reason="jinja2 is needed to render meta.yaml")
if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli", reason="tomli is needed on Python 3.10")

REPO = Path(__file__).resolve().parents[1]
RECIPE_DIR = REPO / "recipe"
SUBDIR = "linux-64"
PYTHONS = ("3.11", "3.12")
CUDA_VERSION = "13.0"
BUILD_STRING = re.compile(r"^(?P<flavour>cpu|cuda\d+)_py(?P<py>\d+)h[0-9a-f]{7}_(?P<number>\d+)$")
# PyPI name -> conda-forge name where they differ
CONDA_NAMES = {
    "torch": "pytorch",
    "matplotlib": "matplotlib-base",
    "snakemake": "snakemake-minimal",
}


def _pyproject(root: Path = REPO) -> dict[str, Any]:
    return tomllib.loads((root / "pyproject.toml").read_text())


def _pip_pins(requirements: list[str]) -> dict[str, str]:
    """``["torch==2.14.1", "numpy>=1.26", "wheel"]`` -> ``{"pytorch": "==2.14.1", ...}``."""
    pins = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement.strip())
        assert match, requirement
        name, constraint = match.groups()
        pins[CONDA_NAMES.get(name.lower(), name.lower())] = constraint.replace(" ", "")
    return pins


def _conda_pins(specs: list[str]) -> dict[str, str]:
    """``["pytorch ==2.14.1 cpu*", "pip"]`` -> ``{"pytorch": "==2.14.1", "pip": ""}``."""
    pins = {}
    for spec in specs:
        name, *rest = spec.split()
        pins[name] = rest[0] if rest else ""
    return pins


# ---------------------------------------------------------------- recipe.yaml (rattler-build)


def _render(recipe_dir: Path = RECIPE_DIR) -> list[Any]:
    recipe = rattler_build.Stage0Recipe.from_file(recipe_dir / "recipe.yaml")
    variants = rattler_build.VariantConfig.from_file(recipe_dir / "variants.yaml")
    # experimental: load_from_file() reads the version from pyproject.toml
    platform = rattler_build.PlatformConfig(target_platform=SUBDIR, experimental=True)
    return recipe.render(variants, rattler_build.RenderConfig(platform=platform))


@pytest.fixture(scope="module")
def rendered() -> list[Any]:
    return _render()


def _by_variant(rendered: list[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (v.variant["python"], v.variant["cuda_compiler_version"]): v.recipe.to_dict()
        for v in rendered
    }


def test_recipe_parses_strictly(tmp_path: Path) -> None:
    recipe = rattler_build.Stage0Recipe.from_file(RECIPE_DIR / "recipe.yaml")
    assert recipe.schema_version == 1
    # the parser rejects unknown keys, so the clean parse above means something
    broken = (RECIPE_DIR / "recipe.yaml").read_text().replace("about:\n", "about:\n  homepag: x\n")
    (tmp_path / "recipe.yaml").write_text(broken)
    with pytest.raises(rattler_build.RecipeParseError, match="homepag"):
        rattler_build.Stage0Recipe.from_file(tmp_path / "recipe.yaml")


def test_every_variant_renders(rendered: list[Any]) -> None:
    assert len(rendered) == 4
    assert set(_by_variant(rendered)) == {
        (python, cuda) for python in PYTHONS for cuda in ("None", CUDA_VERSION)
    }


def test_name_and_version_come_from_pyproject(rendered: list[Any]) -> None:
    project = _pyproject()["project"]
    for variant in rendered:
        assert variant.recipe.package.name == project["name"]
        assert variant.recipe.package.version == project["version"]


def test_build_strings_carry_flavour_and_python(rendered: list[Any]) -> None:
    strings = set()
    for (python, cuda), recipe in _by_variant(rendered).items():
        match = BUILD_STRING.match(recipe["build"]["string"])
        assert match, recipe["build"]["string"]
        expected = "cpu" if cuda == "None" else "cuda" + cuda.replace(".", "")
        assert match["flavour"] == expected
        assert match["py"] == python.replace(".", "")
        assert int(match["number"]) == recipe["build"]["number"]
        strings.add(recipe["build"]["string"])
    assert len(strings) == 4  # the hash separates the variants too


def test_pytorch_selector_in_host_and_run(rendered: list[Any]) -> None:
    torch_pin = _pip_pins(_pyproject()["project"]["dependencies"])["pytorch"]
    for (_, cuda), recipe in _by_variant(rendered).items():
        selector = "cpu*" if cuda == "None" else "cuda*"
        expected = f"pytorch {torch_pin} {selector}"
        for section in ("host", "run"):
            torch_specs = [
                spec for spec in recipe["requirements"][section] if spec.startswith("pytorch")
            ]
            assert torch_specs == [expected], (section, cuda, torch_specs)


def test_build_requirements_compilers(rendered: list[Any]) -> None:
    for (_, cuda), recipe in _by_variant(rendered).items():
        names = [spec.split()[0] for spec in recipe["requirements"]["build"]]
        expected = [f"sysroot_{SUBDIR}", f"gcc_{SUBDIR}", f"gxx_{SUBDIR}"]
        if cuda != "None":
            expected.append(f"cuda-nvcc_{SUBDIR}")
        assert names == expected, (cuda, names)


def test_host_requirements(rendered: list[Any]) -> None:
    for recipe in _by_variant(rendered).values():
        names = [spec.split()[0] for spec in recipe["requirements"]["host"]]
        assert names == ["python", "pip", "setuptools", "pybind11", "pytorch"]


def test_run_requirements_match_pip_dependencies(rendered: list[Any]) -> None:
    pip = _pip_pins(_pyproject()["project"]["dependencies"])
    for recipe in _by_variant(rendered).values():
        run = _conda_pins(recipe["requirements"]["run"])
        assert run.pop("python") == ""
        assert run == pip


def test_tests_import_compiled_module_and_train(rendered: list[Any]) -> None:
    for recipe in _by_variant(rendered).values():
        tests = recipe["tests"]
        python_tests = [t["python"] for t in tests if "python" in t]
        assert len(python_tests) == 1
        assert {"lenet_cpp", "lenet_cpp._C"} <= set(python_tests[0]["imports"])
        assert python_tests[0].get("pip_check", True) is True
        scripts = [t for t in tests if "script" in t]
        assert len(scripts) == 1
        assert "python test_train.py" in _commands(scripts[0]["script"])
        assert "lenet-cpp --help" in _commands(scripts[0]["script"])
        assert scripts[0]["files"]["recipe"] == ["test_train.py"]
        contents = [t["package_contents"] for t in tests if "package_contents" in t]
        assert len(contents) == 1
        assert any("lenet_cpp/_C.cpython-" in path for path in contents[0]["files"])
        assert contents[0]["bin"] == ["lenet-cpp"]
    assert "lenet_cpp.train(" in (RECIPE_DIR / "test_train.py").read_text()


def test_build_script_installs_without_deps_or_isolation() -> None:
    script = (RECIPE_DIR / "build.sh").read_text()
    install = [line for line in script.splitlines() if "pip install" in line]
    assert len(install) == 1
    assert "--no-deps" in install[0]
    assert "--no-build-isolation" in install[0]


def _copy_recipe_with_version(tmp_path: Path, version: str) -> Path:
    """The recipe directory beside a pyproject.toml whose version is ``version``."""
    recipe_dir = Path(shutil.copytree(RECIPE_DIR, tmp_path / "recipe"))
    text = (REPO / "pyproject.toml").read_text()
    current = _pyproject()["project"]["version"]
    (tmp_path / "pyproject.toml").write_text(
        text.replace(f'version = "{current}"', f'version = "{version}"', 1)
    )
    return recipe_dir


def test_version_is_read_from_pyproject_not_hard_coded(tmp_path: Path) -> None:
    recipe_dir = _copy_recipe_with_version(tmp_path, "9.8.7")
    assert {v.recipe.package.version for v in _render(recipe_dir)} == {"9.8.7"}
    assert {meta["package"]["version"] for meta in _render_meta_all(recipe_dir).values()} == {
        "9.8.7"
    }


# ---------------------------------------------------------------- meta.yaml (conda-build)

_SELECTOR = re.compile(r"^(?P<line>.*?)\s*#\s*\[(?P<expr>[^\]]+)\]\s*$")
_SELECTOR_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Name,
    ast.Load,
    ast.Constant,
)


def _selector_true(expression: str, namespace: dict[str, Any]) -> bool:
    """Evaluate a conda-build selector; only names, constants, ==, !=, and/or/not allowed."""
    tree = ast.parse(expression, mode="eval")
    for node in ast.walk(tree):
        assert isinstance(node, _SELECTOR_NODES), f"unsupported selector: {expression}"
    return bool(eval(compile(tree, "<selector>", "eval"), {"__builtins__": {}}, namespace))


def _select_lines(text: str, namespace: dict[str, Any]) -> str:
    kept = []
    for line in text.splitlines():
        match = _SELECTOR.match(line)
        if match is None:
            kept.append(line)
        elif _selector_true(match["expr"], namespace):
            kept.append(match["line"])
    return "\n".join(kept) + "\n"


def _meta_context(recipe_dir: Path, variant: dict[str, str]) -> dict[str, Any]:
    """Stand-ins for conda-build's Jinja context, emitting rattler-build's spellings."""

    def load_file_data(filename: str, fmt: str | None = None, *, from_recipe_dir: bool = False):
        assert from_recipe_dir, "meta.yaml must read pyproject.toml relative to the recipe"
        return tomllib.loads((recipe_dir / filename).read_text())

    def compiler(language: str) -> str:
        name = variant[f"{language}_compiler"]
        return f"{name}_{SUBDIR} {variant[f'{language}_compiler_version']}.*"

    def stdlib(language: str) -> str:
        return f"{variant[f'{language}_stdlib']}_{SUBDIR} {variant[f'{language}_stdlib_version']}.*"

    return {
        **variant,
        "load_file_data": load_file_data,
        "compiler": compiler,
        "stdlib": stdlib,
        "CONDA_PY": variant["python"].replace(".", ""),
        "PKG_HASH": "1234567",
    }


def _render_meta(recipe_dir: Path, variant: dict[str, str]) -> dict[str, Any]:
    namespace = {"linux": True, "unix": True, "osx": False, "win": False, **variant}
    text = _select_lines((recipe_dir / "meta.yaml").read_text(), namespace)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    rendered = env.from_string(text).render(_meta_context(recipe_dir, variant))
    return yaml.safe_load(rendered)


def _render_meta_all(recipe_dir: Path = RECIPE_DIR) -> dict[tuple[str, str], dict[str, Any]]:
    variants = yaml.safe_load((recipe_dir / "variants.yaml").read_text())
    single = {key: str(values[0]) for key, values in variants.items()}
    return {
        (python, cuda): _render_meta(
            recipe_dir, {**single, "python": python, "cuda_compiler_version": cuda}
        )
        for python in variants["python"]
        for cuda in map(str, variants["cuda_compiler_version"])
    }


@pytest.fixture(scope="module")
def metas() -> dict[tuple[str, str], dict[str, Any]]:
    return _render_meta_all()


def _commands(script: Any) -> list[str]:
    """A rendered script test's commands (one string or a list of them)."""
    return [script] if isinstance(script, str) else list(script)


def _without_hash(build_string: str) -> str:
    return re.sub(r"h[0-9a-f]{7}_", "hHASH_", build_string)


def test_meta_yaml_agrees_with_recipe_yaml(rendered: list[Any], metas: dict) -> None:
    recipes = _by_variant(rendered)
    assert set(metas) == set(recipes)
    for key, recipe in recipes.items():
        meta = metas[key]
        assert meta["package"] == recipe["package"], key
        assert meta["source"] == recipe["source"][0], key
        assert meta["build"]["number"] == recipe["build"]["number"], key
        assert _without_hash(meta["build"]["string"]) == _without_hash(recipe["build"]["string"]), (
            key
        )
        for section in ("build", "host", "run"):
            assert meta["requirements"][section] == recipe["requirements"][section], (
                key,
                section,
            )


def test_meta_yaml_tests_agree_with_recipe_yaml(rendered: list[Any], metas: dict) -> None:
    for key, recipe in _by_variant(rendered).items():
        meta_test = metas[key]["test"]
        python_test = next(t["python"] for t in recipe["tests"] if "python" in t)
        script_test = next(t for t in recipe["tests"] if "script" in t)
        contents = next(t["package_contents"] for t in recipe["tests"] if "package_contents" in t)
        assert meta_test["imports"] == python_test["imports"]
        assert ("pip check" in meta_test["commands"]) == python_test.get("pip_check", True)
        assert "pip" in meta_test["requires"]
        assert meta_test["files"] == script_test["files"]["recipe"]
        assert set(_commands(script_test["script"])) <= set(meta_test["commands"])
        compiled = contents["files"][0].split("site-packages/", 1)[1]  # lenet_cpp/_C.cpython-*.so
        assert any(compiled in command for command in meta_test["commands"])
        for module in contents["site_packages"]:
            path = module.replace(".", "/")
            assert any(path in command for command in meta_test["commands"]), module
        for executable in contents["bin"]:
            assert f"test -f $PREFIX/bin/{executable}" in meta_test["commands"], executable


def test_both_recipes_use_the_shared_build_script() -> None:
    recipe = yaml.safe_load((RECIPE_DIR / "recipe.yaml").read_text())
    assert recipe["build"]["script"] == "build.sh"
    meta_text = (RECIPE_DIR / "meta.yaml").read_text()
    # conda-build runs recipe/build.sh when build/script is absent
    assert not re.search(r"^\s+script:", meta_text, re.MULTILINE)
    assert (RECIPE_DIR / "build.sh").stat().st_mode & 0o111


# ---------------------------------------------------------------- environment.yml


def test_environment_yml_has_the_pip_pins() -> None:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"
    conda = _conda_pins([spec for spec in env["dependencies"] if isinstance(spec, str)])
    pyproject = _pyproject()
    extras = pyproject["project"]["optional-dependencies"]
    pip = _pip_pins(
        pyproject["project"]["dependencies"]
        + extras["pipeline"]
        + extras["test"]
        + pyproject["build-system"]["requires"]
    )
    mismatched = {
        name: (pin, conda.get(name)) for name, pin in pip.items() if conda.get(name) != pin
    }
    assert not mismatched, mismatched
    assert {"c-compiler", "cxx-compiler", "pybind11", "pip"} <= set(conda)


# ---------------------------------------------------------------- run-time imports

# import name -> conda-forge package name where they differ
IMPORT_TO_CONDA = {"torch": "pytorch", "matplotlib": "matplotlib-base", "yaml": "pyyaml"}


def _third_party_imports(package_dir: Path) -> set[str]:
    """Top-level names of the non-stdlib modules that the package's sources import."""
    names = set()
    for source in package_dir.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "lenet_cpp"}


def test_run_requirements_cover_what_the_package_imports(rendered: list[Any]) -> None:
    imported = {IMPORT_TO_CONDA.get(n, n) for n in _third_party_imports(REPO / "lenet_cpp")}
    assert "pytorch" in imported  # the scan sees the package's imports at all
    for recipe in _by_variant(rendered).values():
        run = {spec.split()[0] for spec in recipe["requirements"]["run"]}
        assert imported <= run, sorted(imported - run)
