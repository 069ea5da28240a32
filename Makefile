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
export UV := $(UV)
# The Pythons the classifiers promise. The venv's own is tested (with coverage) by `coverage`;
# each other one by `pythons`, from ~/.pyenv/versions (or PATH). A missing one fails make test.
PYTHONS ?= 3.11 3.12 3.13
# Whole modules per worker, slow ones first (tests/conftest.py): a module's fixtures are set up
# once, and the longest modules run beside the rest rather than at the end. (`--dist loadgroup`
# no longer groups under pytest 9.2: pytest-xdist issue 1386.)
XDIST := -n 2 --dist loadfile --no-loadscope-reorder
TIMED := $(PY) scripts/timed.py

.PHONY: help install lint typecheck format generate test coverage pythons dist test-fast \
	examples docs demo serve bench clean

help:
	@echo "make demo     run the main job: the demo against the built-in local Data Storage"
	@echo "make test     lint, type-check, the suite with coverage, the examples, the docs, the"
	@echo "              suite under every supported Python, and the built wheel and sdist"
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

# Each step is timed; the breakdown is printed at the end (and kept in .make-times).
test: install
	@rm -f .make-times
	@$(TIMED) lint $(MAKE) --no-print-directory lint
	@$(TIMED) typecheck $(MAKE) --no-print-directory typecheck
	@$(TIMED) "suite + coverage" $(MAKE) --no-print-directory coverage
	@$(TIMED) examples $(MAKE) --no-print-directory examples
	@$(TIMED) docs $(MAKE) --no-print-directory docs
	@$(TIMED) "other Pythons" $(MAKE) --no-print-directory pythons
	@$(TIMED) "wheel + sdist" $(MAKE) --no-print-directory dist
	@$(TIMED) --report

# pyright's view: the public API 100 % type-complete (--verifytypes), tests/typing/api.py clean.
typecheck: install
	$(PY) scripts/verifytypes.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/basedpyright --warnings tests/typing/api.py

# The suite under `coverage run` (started before pytest imports the plugin and the package;
# workers and subprocesses measured through the patches in pyproject), branch coverage combined
# and held to the floor there (fail_under).
coverage: install
	rm -f .coverage .coverage.*
	$(PY) -m coverage run -m pytest $(XDIST)
	$(PY) -m coverage combine --quiet
	$(PY) -m coverage report

pythons: install
	$(PY) scripts/pythons.py $(PYTHONS) -- $(XDIST)

# Build the sdist and, from it, the wheel; install each into a fresh venv and use it.
dist: install
	rm -rf dist
	$(UV) build --quiet --out-dir dist
	$(PY) scripts/smoke_dist.py dist

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
	rm -rf $(VENV) $(VENV)-*/ $(TOOLS) build dist .mypy_cache .ruff_cache .coverage .coverage.* \
		.make-times
