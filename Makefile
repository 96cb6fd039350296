# Two commands do all the set-up: `make bench` and `make test`.
# They create .venv (python3 -m venv) and install the project into it when missing.
# On a machine that already has the dependencies (e.g. an accelerator image with a CUDA
# jax and no network), pass the interpreter instead: `make bench PYTHON=python3`.
# GPU machine with network: `make bench EXTRAS=dev,cuda` (CUDA 12) or `EXTRAS=dev,cuda13`
# (CUDA 13) installs the CUDA jax plugin.
# CI runs two legs (.ci/run): `make test` (this machine's python3, e.g. 3.11 with jax 0.10) and
# `make test-latest` (Python 3.12 with the newest jax, flax and optax, in .venv-latest).

comma := ,
VENV ?= .venv
EXTRAS ?= dev
ARGS ?=

ifeq ($(origin PYTHON),command line)
  # Use the given interpreter as it is; import the packages from this checkout.
  RUN := PYTHONPATH=$(CURDIR) $(PYTHON)
  ENV := deps
else
  RUN := $(VENV)/bin/python
  ENV := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
endif

# The newest-jax leg: this Python version (found on the PATH or through pyenv), its own venv.
LATEST_PYTHON_VERSION ?= 3.12
LATEST_VENV ?= .venv-latest

.PHONY: help env deps test test-latest test-matrix test-slow test-all bench bench-pytest compare \
	compare-pytest history lint format clean

help:
	@echo "make bench        run the benchmark (profile chosen by device) into results/<run_id>/"
	@echo "make test         run the tests (not the slow ones)"
	@echo "make test-latest  the same tests on Python $(LATEST_PYTHON_VERSION) with the newest jax/flax/optax"
	@echo "make test-matrix  both legs, as CI runs them"
	@echo "make test-slow    run only the slow tests"
	@echo "make bench-pytest time the workloads with pytest-benchmark and save the run"
	@echo "make compare      compare the last two runs in results/ (its last line names the"
	@echo "                  status: 1 a regression, 3 slower cases while the machine moved;"
	@echo "                  make exits 2 for both: CI calls python -m bench compare directly)"
	@echo "make compare-pytest  the same for the last two pytest-benchmark saves"
	@echo "make history      every run in results/: results/history.csv and history.png"
	@echo "make lint         ruff check + format check"
	@echo "Options: PYTHON=python3 (use an existing interpreter), EXTRAS=dev,cuda|dev,cuda13, ARGS='...'"

env: $(ENV)

# With PYTHON=...: stop in one line when that interpreter lacks a dependency (bench/deps.py).
# The probe runs only when a target needs it ($(error) in a recipe expands only then).
DEPS_MISSING = $(shell $(RUN) -m bench.deps 2>&1; true)
deps:
	$(if $(DEPS_MISSING),$(error make: $(DEPS_MISSING)))

$(VENV)/.installed-%: pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-*
	touch $@

# The tests run in parallel, one pytest-xdist worker per core (TEST_WORKERS=0: in this process;
# the default with a PYTHON=... that has no pytest-xdist).
ifeq ($(origin PYTHON),command line)
  TEST_WORKERS ?= $(shell $(PYTHON) -c "import xdist" 2>/dev/null && echo auto || echo 0)
else
  TEST_WORKERS ?= auto
endif
PYTEST = -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal)

test: $(ENV)
	$(RUN) $(PYTEST) $(ARGS)

# Skipped, with a one-line message, where no Python $(LATEST_PYTHON_VERSION) is installed.
test-latest:
	@py=$$(.ci/find-python $(LATEST_PYTHON_VERSION)) || { echo "make test-latest:" \
	  "SKIPPED: no Python $(LATEST_PYTHON_VERSION) on the PATH or in pyenv"; exit 0; }; \
	set -e; test -x $(LATEST_VENV)/bin/python || $$py -m venv $(LATEST_VENV); \
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade pip; \
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade -e ".[dev]"; \
	$(LATEST_VENV)/bin/python $(PYTEST) $(ARGS)

test-matrix: test test-latest

test-slow: $(ENV)
	$(RUN) $(PYTEST) -m slow $(ARGS)

test-all: $(ENV)
	$(RUN) $(PYTEST) -m "slow or not slow" $(ARGS)

bench: $(ENV)
	$(RUN) -m bench run $(ARGS)

# pytest-benchmark: time the registered workloads (smoke sizes) and save the run with its raw
# times (--benchmark-save-data: compare tests significance on them).
# `make compare` compares the last two run folders in results/, `make compare-pytest` the last
# two pytest-benchmark saves (THRESHOLD: the median growth a significant slowdown must exceed;
# exit 1 a regression, 3 slower cases on a machine that moved; ARGS=--remeasure re-times the
# flagged cases of this checkout). pytest-benchmark's own command reads the same saves:
# `pytest-benchmark --storage results/pytest-benchmark list` (README).
THRESHOLD ?= 0.10
bench-pytest: $(ENV)
	$(RUN) -m pytest tests/benchmarks -m bench --benchmark-enable \
		--benchmark-storage=results/pytest-benchmark --benchmark-autosave \
		--benchmark-save-data $(ARGS)

# GNU make exits 2 whenever a recipe fails, whatever the recipe's own status: `make compare`
# cannot hand the tool's 1 (regression) or 3 (machine moved) on as make's status. The recipe
# says the tool's status in its last line instead (and exits with it, so make's own message
# names it too: "Error 3"); a CI job that branches on the status calls `python -m bench compare`
# directly (README, "Comparing two runs").
COMPARE_STATUS = status=$$?; case $$status in 0) exit 0;; 1) why="a regression";; \
	2) why="the runs cannot be compared";; 3) why="slower cases on a machine that moved";; \
	*) why="an unexpected failure";; esac; \
	echo "make $@: python -m bench compare exited with status $$status ($$why); make itself" \
	  "exits 2 on any failure: call python -m bench compare for the status" >&2; exit $$status

compare: $(ENV)
	@echo "$(RUN) -m bench compare --threshold $(THRESHOLD) $(ARGS)"
	@$(RUN) -m bench compare --threshold $(THRESHOLD) $(ARGS); $(COMPARE_STATUS)

compare-pytest: $(ENV)
	@echo "$(RUN) -m bench compare --pytest-benchmark --threshold $(THRESHOLD) $(ARGS)"
	@$(RUN) -m bench compare --pytest-benchmark --threshold $(THRESHOLD) $(ARGS); \
	  $(COMPARE_STATUS)

history: $(ENV)
	$(RUN) -m bench history results $(ARGS)

lint: $(ENV)
	$(RUN) -m ruff check .
	$(RUN) -m ruff format --check .

format: $(ENV)
	$(RUN) -m ruff format .
	$(RUN) -m ruff check --fix .

clean:
	rm -rf $(VENV) $(LATEST_VENV) .pytest_cache .ruff_cache build *.egg-info
