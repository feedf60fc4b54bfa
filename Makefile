# Newcomer entry points: `make` runs the main job, `make test` the tests.
# Both create .venv and install everything on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CORES ?= 2

.PHONY: all run test test-conda sdist bench lint clean

all: run

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Re-installs when the pins or the build description change; compiles cpp/ into lenet_cpp/_C.
$(INSTALLED): requirements.txt pyproject.toml setup.py | $(PY)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $@

# The main job: every figure of config.yaml's grid, then report.html. The venv's bin/ goes
# first on PATH so the rules find its python and ninja.
run: $(INSTALLED)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/snakemake --profile profiles/local \
		--cores $(CORES) --report report.html --report-after-run

test: $(INSTALLED)
	$(PY) -m pytest

bench: $(INSTALLED)
	$(PY) bench/bench.py

# The source distribution that recipe/ builds from (dist/lenet_cpp-<version>.tar.gz): the C++
# sources, the package and the workflow (MANIFEST.in). Prints its sha256 for the recipe.
sdist: $(INSTALLED)
	rm -f dist/lenet_cpp-*.tar.gz
	$(PY) -m build --sdist --no-isolation --outdir dist .
	sha256sum dist/lenet_cpp-*.tar.gz

# The conda smoke build (rattler-build against a local stub channel; a few minutes).
test-conda: $(INSTALLED)
	$(PY) -m pytest -m conda

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf build dist lenet_cpp/_C*.so results logs benchmarks .snakemake report.html
