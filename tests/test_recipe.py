"""Offline checks of the conda packaging: recipe/recipe.yaml, recipe/meta.yaml, environment.yml.

recipe.yaml is parsed strictly and rendered for every variant with py-rattler-build, without
the experimental flag, against recipe/variants.yaml plus tests/conda/global_pinning.yaml (the
keys conda-forge's global pinning supplies); no channel is contacted: rendering does not solve.
meta.yaml is rendered with jinja2 and stand-ins for conda-build's functions, then compared with
recipe.yaml so the two recipes cannot drift. Neither proves that conda-forge's packages resolve:
that needs a channel (see README).
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from pyproject_data import read_pyproject

rattler_build = pytest.importorskip(
    "rattler_build",
    reason="py-rattler-build is not installed (pip install py-rattler-build)",
)
yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read meta.yaml/environment.yml")
jinja2 = pytest.importorskip("jinja2", reason="jinja2 is needed to render meta.yaml")

REPO = Path(__file__).resolve().parents[1]
RECIPE_DIR = REPO / "recipe"
GLOBAL_PINNING = REPO / "tests" / "conda" / "global_pinning.yaml"
SUBDIR = "linux-64"
PYTHONS = ("3.11", "3.12")
BUILD_STRING = re.compile(r"^cpu_py(?P<py>\d+)h[0-9a-f]{7}_(?P<number>\d+)$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
TORCH_SELECTOR = "pytorch * cpu*"
# PyPI name -> conda-forge name where they differ
CONDA_NAMES = {
    "torch": "pytorch",
    "matplotlib": "matplotlib-base",
    "snakemake": "snakemake-minimal",
}


def _pyproject(root: Path = REPO) -> dict[str, Any]:
    return read_pyproject(root)


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
    """``["numpy >=1.26", "pip"]`` -> ``{"numpy": ">=1.26", "pip": ""}`` (selectors dropped)."""
    pins = {}
    for spec in specs:
        if spec == TORCH_SELECTOR:
            continue
        name, *rest = spec.split()
        pins[name] = rest[0] if rest else ""
    return pins


# ---------------------------------------------------------------- recipe.yaml (rattler-build)


def _variant_config(recipe_dir: Path = RECIPE_DIR) -> Any:
    return rattler_build.VariantConfig.from_file(recipe_dir / "variants.yaml").merge(
        rattler_build.VariantConfig.from_file(GLOBAL_PINNING)
    )


def _render(recipe_dir: Path = RECIPE_DIR) -> list[Any]:
    """Render as conda-forge's build scripts do: no experimental features."""
    recipe = rattler_build.Stage0Recipe.from_file(recipe_dir / "recipe.yaml")
    platform = rattler_build.PlatformConfig(target_platform=SUBDIR, experimental=False)
    return recipe.render(_variant_config(recipe_dir), rattler_build.RenderConfig(platform=platform))


@pytest.fixture(scope="module")
def rendered() -> list[Any]:
    return _render()


def _by_variant(rendered: list[Any]) -> dict[str, dict[str, Any]]:
    return {v.variant["python"]: v.recipe.to_dict() for v in rendered}


def test_recipe_parses_strictly(tmp_path: Path) -> None:
    recipe = rattler_build.Stage0Recipe.from_file(RECIPE_DIR / "recipe.yaml")
    assert recipe.schema_version == 1
    # the parser rejects unknown keys, so the clean parse above means something
    broken = (RECIPE_DIR / "recipe.yaml").read_text().replace("about:\n", "about:\n  homepag: x\n")
    (tmp_path / "recipe.yaml").write_text(broken)
    with pytest.raises(rattler_build.RecipeParseError, match="homepag"):
        rattler_build.Stage0Recipe.from_file(tmp_path / "recipe.yaml")


def test_every_variant_renders_without_experimental(rendered: list[Any]) -> None:
    assert sorted(_by_variant(rendered)) == list(PYTHONS)


def test_experimental_features_would_not_render(tmp_path: Path) -> None:
    """The render above proves something: a recipe needing --experimental fails it."""
    recipe_dir = Path(shutil.copytree(RECIPE_DIR, tmp_path / "recipe"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    text = (recipe_dir / "recipe.yaml").read_text()
    version_line = re.search(r'^  version: "[^"]+"$', text, re.MULTILINE)
    assert version_line, "recipe.yaml writes its version as a literal in context"
    (recipe_dir / "recipe.yaml").write_text(
        text.replace(
            version_line[0],
            '  version: ${{ load_from_file("../pyproject.toml").project.version }}',
        )
    )
    with pytest.raises(rattler_build.RattlerBuildError, match="experimental"):
        _render(recipe_dir)


def test_variants_yaml_chooses_only_the_pythons() -> None:
    """Compilers, sysroot and the pytorch pin belong to conda-forge's global pinning."""
    variants = yaml.safe_load((RECIPE_DIR / "variants.yaml").read_text())
    assert variants == {"python": list(PYTHONS)}


def test_version_written_in_recipes_equals_pyproject(rendered: list[Any], metas: dict) -> None:
    project = _pyproject()["project"]
    for variant in rendered:
        assert variant.recipe.package.name == project["name"]
        assert variant.recipe.package.version == project["version"]
    assert {meta["package"]["version"] for meta in metas.values()} == {project["version"]}
    for name in ("recipe.yaml", "meta.yaml"):
        assert "load_from_file" not in (RECIPE_DIR / name).read_text()
        assert "load_file_data" not in (RECIPE_DIR / name).read_text()


def test_source_is_the_release_sdist(rendered: list[Any]) -> None:
    version = _pyproject()["project"]["version"]
    for recipe in _by_variant(rendered).values():
        (source,) = recipe["source"]
        assert set(source) == {"url", "sha256"}
        assert source["url"].startswith("https://")
        assert source["url"].endswith(f"/lenet_cpp-{version}.tar.gz")  # `make sdist`'s name
        assert SHA256.match(source["sha256"])


def test_build_strings_carry_flavour_and_python(rendered: list[Any]) -> None:
    strings = set()
    for python, recipe in _by_variant(rendered).items():
        match = BUILD_STRING.match(recipe["build"]["string"])
        assert match, recipe["build"]["string"]
        assert match["py"] == python.replace(".", "")
        assert int(match["number"]) == recipe["build"]["number"]
        strings.add(recipe["build"]["string"])
    assert len(strings) == len(PYTHONS)


def test_pytorch_as_torch_extension_feedstocks_have_it(rendered: list[Any]) -> None:
    """Host: plain pytorch (pinned by the global pinning) and the cpu build selector;
    run: the selector only, the version range comes from pytorch's run_exports."""
    for recipe in _by_variant(rendered).values():
        host = [s for s in recipe["requirements"]["host"] if s.startswith("pytorch")]
        run = [s for s in recipe["requirements"]["run"] if s.startswith("pytorch")]
        assert host == ["pytorch", TORCH_SELECTOR]
        assert run == [TORCH_SELECTOR]


def test_build_requirements_compilers(rendered: list[Any]) -> None:
    for recipe in _by_variant(rendered).values():
        names = [spec.split()[0] for spec in recipe["requirements"]["build"]]
        assert names == [f"sysroot_{SUBDIR}", f"gcc_{SUBDIR}", f"gxx_{SUBDIR}"]


def test_host_requirements(rendered: list[Any]) -> None:
    for recipe in _by_variant(rendered).values():
        names = [spec.split()[0] for spec in recipe["requirements"]["host"]]
        assert names == ["python", "pip", "setuptools", "wheel", "pybind11", "pytorch", "pytorch"]


def test_run_requirements_match_pip_dependencies(rendered: list[Any]) -> None:
    """Run = the pip dependencies plus the `pipeline` extra (the packaged workflow needs it);
    pytorch's range is not written (run_exports) but must be the one pip declares."""
    project = _pyproject()["project"]
    pip = _pip_pins(project["dependencies"] + project["optional-dependencies"]["pipeline"])
    assert pip.pop("pytorch") == ">=2.14.1,<2.15"  # = pytorch 2.14's run_exports (x.x)
    for recipe in _by_variant(rendered).values():
        run = _conda_pins(recipe["requirements"]["run"])
        assert run.pop("python") == ""
        assert run == pip


def test_about_and_extra(rendered: list[Any]) -> None:
    project = _pyproject()["project"]
    for recipe in _by_variant(rendered).values():
        about = recipe["about"]
        assert about["license"] == project["license"]["text"]
        assert about["license_file"] == ["LICENSE"]
        assert (REPO / "LICENSE").is_file()
        assert about["summary"]
        assert about["homepage"] == project["urls"]["Homepage"]
        assert about["repository"] == project["urls"]["Source"]
        assert recipe["extra"]["recipe-maintainers"]


def test_tests_import_compiled_module_train_and_ship_the_workflow(rendered: list[Any]) -> None:
    for recipe in _by_variant(rendered).values():
        tests = recipe["tests"]
        python_tests = [t["python"] for t in tests if "python" in t]
        assert len(python_tests) == 1
        assert {"lenet_cpp", "lenet_cpp._C", "lenet_cpp.pipeline"} <= set(
            python_tests[0]["imports"]
        )
        assert python_tests[0].get("pip_check", True) is True
        scripts = [t for t in tests if "script" in t]
        assert len(scripts) == 1
        commands = _commands(scripts[0]["script"])
        assert "python test_train.py" in commands
        assert "lenet-cpp --help" in commands
        assert "lenet-cpp pipeline --help" in commands
        assert scripts[0]["files"]["recipe"] == ["test_train.py"]
        contents = [t["package_contents"] for t in tests if "package_contents" in t]
        assert len(contents) == 1
        assert any("lenet_cpp/_C.cpython-" in path for path in contents[0]["files"])
        assert any("lenet_cpp/workflow/Snakefile" in path for path in contents[0]["files"])
        assert contents[0]["bin"] == ["lenet-cpp"]
    assert "lenet_cpp.train(" in (RECIPE_DIR / "test_train.py").read_text()


def test_build_script_installs_without_deps_or_isolation() -> None:
    script = (RECIPE_DIR / "build.sh").read_text()
    install = [line for line in script.splitlines() if "pip install" in line]
    assert len(install) == 1
    assert "--no-deps" in install[0]
    assert "--no-build-isolation" in install[0]


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

    def compiler(language: str) -> str:
        name = variant[f"{language}_compiler"]
        return f"{name}_{SUBDIR} {variant[f'{language}_compiler_version']}.*"

    def stdlib(language: str) -> str:
        return f"{variant[f'{language}_stdlib']}_{SUBDIR} {variant[f'{language}_stdlib_version']}.*"

    return {
        **variant,
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


def _render_meta_all(recipe_dir: Path = RECIPE_DIR) -> dict[str, dict[str, Any]]:
    variants = yaml.safe_load((recipe_dir / "variants.yaml").read_text())
    pinning = yaml.safe_load(GLOBAL_PINNING.read_text())
    single = {key: str(values[0]) for key, values in pinning.items()}
    return {
        python: _render_meta(recipe_dir, {**single, "python": python})
        for python in variants["python"]
    }


@pytest.fixture(scope="module")
def metas() -> dict[str, dict[str, Any]]:
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
        assert meta["extra"] == recipe["extra"], key
        about = {**meta["about"]}
        about["homepage"] = about.pop("home")
        about["repository"] = about.pop("dev_url")
        about["license_file"] = [about["license_file"]]
        about["description"] = about["description"].rstrip("\n")  # rattler-build strips it
        assert about == recipe["about"], key


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
        for path in contents["files"]:  # lib/python*/site-packages/lenet_cpp/...
            relative = path.split("site-packages/", 1)[1]
            assert any(f"$SP_DIR/{relative}" in command for command in meta_test["commands"]), path
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


def _tested_pins() -> dict[str, str]:
    """requirements.txt (the exact versions the project is tested with), conda names."""
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return _pip_pins([line for line in lines if line.strip() and not line.startswith("#")])


def test_environment_yml_has_the_tested_pins() -> None:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"
    conda = _conda_pins([spec for spec in env["dependencies"] if isinstance(spec, str)])
    tested = _tested_pins()
    # the same exact version as requirements.txt for every package both name
    mismatched = {
        name: (tested[name], pin)
        for name, pin in conda.items()
        if name in tested
        if pin != tested[name]
    }
    assert not mismatched, mismatched
    # every requirement that pyproject declares is in the environment
    pyproject = _pyproject()
    extras = pyproject["project"]["optional-dependencies"]
    declared = _pip_pins(
        pyproject["project"]["dependencies"]
        + extras["pipeline"]
        + extras["test"]
        + pyproject["build-system"]["requires"]
    )
    assert set(declared) <= set(conda), sorted(set(declared) - set(conda))
    assert {"c-compiler", "cxx-compiler", "pybind11", "pip"} <= set(conda)
    python = next(spec for spec in env["dependencies"] if spec.startswith("python "))
    assert python.split()[1] == f"{sys.version_info.major}.{sys.version_info.minor}.*"


def test_requirements_txt_satisfies_pyproject() -> None:
    """The tested versions lie inside the ranges pip users get."""
    from packaging.requirements import Requirement

    tested = {name: pin.removeprefix("==") for name, pin in _tested_pins().items()}
    project = _pyproject()["project"]
    for text in project["dependencies"] + project["optional-dependencies"]["pipeline"]:
        requirement = Requirement(text)
        name = CONDA_NAMES.get(requirement.name.lower(), requirement.name.lower())
        assert requirement.specifier.contains(tested[name]), (text, tested[name])


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
