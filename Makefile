PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Tests left out of the fast tier: commands run end to end in subprocesses, torchrun jobs, fault
# injection (killed processes), a real browser, a GPU, and the slowest contracts.
FAST   := not e2e and not torchrun and not fault and not browser and not gpu and not slow

.PHONY: install test test-fast lint docs demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "$(FAST)"

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
