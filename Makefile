PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Tests left out of the fast tier: commands run end to end in subprocesses, torchrun jobs, fault
# injection (killed processes), a real browser, a GPU, and the slowest contracts.
FAST   := not e2e and not torchrun and not fault and not browser and not gpu and not slow
# pytest-xdist workers, one torch thread each (tests/conftest.py). The torchrun and fault tests, which
# start jobs of several processes and time signals, run afterwards on their own. WORKERS=0: one process.
WORKERS ?= 2
SERIAL := torchrun or fault

.PHONY: install test test-fast lint docs demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The tests write their bytecode (git-ignored __pycache__ folders) even where PYTHONDONTWRITEBYTECODE is set: compiling
# srunit and rewriting the tests' asserts again takes every worker about 8 s at each start.
TESTENV := PYTHONDONTWRITEBYTECODE=

# Both parts run whatever the first gives, so one run shows every failure; either failing fails the target.
test: $(STAMP)
	$(TESTENV) $(BIN)/python -m pytest -q -n $(WORKERS) -m "not ($(SERIAL))"; status=$$?; \
	$(TESTENV) $(BIN)/python -m pytest -q -m "$(SERIAL)" || status=1; exit $$status

test-fast: $(STAMP)
	$(TESTENV) $(BIN)/python -m pytest -q -n $(WORKERS) -m "$(FAST)"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/mypy

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

demo: $(STAMP)
	$(BIN)/srunit demo

bench: $(STAMP)
	$(BIN)/srunit bench speed --preset cut --size 128
	$(BIN)/srunit bench speed --preset srunit --size 128

clean:
	rm -rf $(VENV) runs build .pytest_cache .mypy_cache .ruff_cache
