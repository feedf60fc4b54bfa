# Newcomer entry points: `make` runs the main job, `make test` the tests.
# Both create .venv and install everything on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CORES ?= 2

.PHONY: all run test test-conda bench lint clean

all: run

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Re-installs when the pins or the build description change; compiles cpp/ into lenet_cpp/_C.
$(INSTALLED): requirements.txt pyproject.toml setup.py | $(PY)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $@

run: $(INSTALLED)
	$(VENV)/bin/snakemake --cores $(CORES)

test: $(INSTALLED)
	$(PY) -m pytest

bench: $(INSTALLED)
	$(PY) bench/bench.py

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf build lenet_cpp/_C*.so results logs benchmarks .snakemake report.html
