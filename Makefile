# Newcomer entry points: `make` runs the main job, `make test` the tests.
# Both create .venv and install everything on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CORES ?= 2

.PHONY: all run test test-slurm test-conda sdist mutation mutation-cpp bench readme-numbers lint clean

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

# Mutation testing, a habit rather than a CI gate (README, Testing). mutmut mutates the Python
# package in mutants/ and runs the fast tests against each mutant; `mutmut browse` shows them.
mutation: $(INSTALLED)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/mutmut run --max-children $(CORES)
	$(VENV)/bin/mutmut results

# The hand-written C++ mutations of tools/cpp_mutants.yaml: each is built and tested in a
# scratch copy of the checkout (the sources here are never changed).
mutation-cpp: $(INSTALLED)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) tools/cpp_mutants.py

bench: $(INSTALLED)
	$(PY) bench/bench.py

# README.md's measured numbers: copy what the last `make` and `make bench` wrote into records/,
# then rewrite the README blocks generated from them (tools/readme_numbers.py).
readme-numbers: $(INSTALLED)
	$(PY) tools/readme_numbers.py record
	$(PY) tools/readme_numbers.py render

# The SLURM tests: start a throw-away single-node cluster and write /etc/slurm/slurm.conf
# (root, slurm-wlm and munge needed; about 2 minutes). Plain `make test` skips them.
test-slurm: $(INSTALLED)
	LENET_SLURM_TESTS=1 $(PY) -m pytest -m slurm

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
	rm -rf build dist lenet_cpp/_C*.so results logs benchmarks .snakemake report.html mutants
