# headwater — the two commands a newcomer needs are `make build` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
TOOLS := .cache/tools
VNU_VERSION := 26.9.27
VNU_JAR := $(TOOLS)/node_modules/vnu-jar/build/dist/vnu.jar

.PHONY: build test lint typecheck pytest validate clean bench bench-scale bench-compare

## build: set up .venv if needed and build the sample site into public/
build: $(VENV)/.installed
	$(BIN)/headwater build

## test: lint, type-check and run the whole test suite (browser and HTML-validity tests included)
test: $(VENV)/.installed-test $(VNU_JAR) lint typecheck pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test $(VNU_JAR)
	VNU_JAR=$(abspath $(VNU_JAR)) $(BIN)/pytest

validate: $(VENV)/.installed
	$(BIN)/headwater validate

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	touch $@ $(VENV)/.installed

# The W3C Nu HTML checker, current release, from the npm registry (runs on the machine's Java).
$(VNU_JAR):
	npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix $(TOOLS) vnu-jar@$(VNU_VERSION)

clean:
	rm -rf public public-preview .cache $(VENV)

## bench: time cold, no-op and incremental builds of 1,000 and 10,000 synthetic articles, local and from a local Contentful API (with the live preview)
bench: $(VENV)/.installed
	$(BIN)/python scripts/bench.py --sizes 1000,10000 --runs 3

## bench-scale: the same at 30,000 articles, once: the cost of one change must not grow with the site
bench-scale: $(VENV)/.installed
	$(BIN)/python scripts/bench.py --sizes 30000 --runs 1

## bench-compare: the same, beside cold builds by Eleventy, Pelican and Hugo (installed into .cache/bench)
bench-compare: $(VENV)/.installed
	$(BIN)/python scripts/bench.py --sizes 1000,10000 --runs 3 --compare
