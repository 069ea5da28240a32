# Everything the project needs is installed from this file and uv.lock: a fresh machine needs only
# python3, pip and make. uv lives in a venv of its own (.tools) because `uv sync` removes from the
# project venv whatever the lock does not list.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install lint format generate test test-fast examples docs demo serve bench clean

help:
	@echo "make demo     run the main job: the demo against the built-in local Data Storage"
	@echo "make test     lint, type-check and run the whole test suite"
	@echo "make generate regenerate src/kubernaut_audit/_generated from openapi/"
	@echo "make bench    run the benchmark scripts (prints tables and JSON)"
	@echo "make docs     build the documentation site strictly into build/site"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --all-extras --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

# Test folders without __init__.py each have a conftest.py: mypy checks them one run each.
lint: install
	$(PY) -m ruff check src tests scripts
	$(PY) -m ruff format --check src tests scripts
	$(PY) -m mypy --strict src tests scripts --exclude 'tests/(emitters|emulator|examples)/'
	$(PY) -m mypy --strict tests/emitters
	$(PY) -m mypy --strict tests/emulator
	$(PY) -m mypy --strict tests/examples

format: install
	$(PY) -m ruff check --fix src tests scripts
	$(PY) -m ruff format src tests scripts

generate: install
	$(PY) scripts/generate.py

test: lint
	$(PY) -m pytest -n 2 --dist loadgroup
	$(MAKE) examples
	$(MAKE) docs

# The site, strictly: any warning, broken link or unresolved reference fails. The code blocks of
# docs/ and the README run in the test suite (tests/test_docs_examples.py).
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# The seed scenario: 40 audit tests against a buffered 2 s writer, sequential and with -n 4.
examples: install
	$(PY) -m pytest tests/examples --audit-emulator -q --audit-window 64
	$(PY) -m pytest tests/examples --audit-emulator -q --audit-window 64 -n 4

test-fast: install
	$(PY) -m pytest -x -q

demo: install
	$(VENV)/bin/kubernaut-audit demo

serve: install
	$(VENV)/bin/kubernaut-audit serve

bench: install
	$(PY) tests/benchmarks/bench_decode.py
	$(PY) tests/benchmarks/bench_emulator.py
	$(PY) tests/benchmarks/bench_wait.py
	$(PY) tests/benchmarks/bench_suite.py
	$(PY) tests/benchmarks/bench_soak.py
	$(PY) tests/benchmarks/bench_trail.py

clean:
	rm -rf $(VENV) $(TOOLS) build dist .mypy_cache .ruff_cache
