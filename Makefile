# headwater — a newcomer needs `make build`, `make serve` and `make test`; `make help` lists all.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
TOOLS := .cache/tools
VNU_VERSION := 26.9.27
VNU_JAR := $(TOOLS)/node_modules/vnu-jar/build/dist/vnu.jar

# The line coverage below which `make test` (and so CI) fails: just under what the suite measures.
COVERAGE_FLOOR := 93

.PHONY: help build serve test check-tools lint typecheck pytest validate clean bench bench-scale bench-compare lighthouse

## help: list these targets
help:
	@awk '/^## [a-z-]+: / { sub(/^## /, ""); name = $$1; sub(/^[a-z-]+: /, ""); printf "  make %-14s %s\n", substr(name, 1, length(name) - 1), $$0 }' $(MAKEFILE_LIST)

## build: set up .venv if needed and build the sample site into public/
build: $(VENV)/.installed
	$(BIN)/headwater build

## serve: build and serve the site at http://127.0.0.1:8000/, rebuilding on every edit (Ctrl-C stops)
serve: $(VENV)/.installed
	$(BIN)/headwater serve $(if $(PORT),--port $(PORT))

## test: check the tools, then lint, type-check and run the whole suite with line coverage
test: check-tools $(VENV)/.installed-test $(VNU_JAR) lint typecheck pytest

# The system tools the suite drives; say what to install rather than fail halfway through.
check-tools:
	@missing=0; \
	if [ ! -f $(VNU_JAR) ] && ! command -v npm >/dev/null 2>&1; then \
	  echo "make test: npm (Node.js) is missing; it fetches the W3C Nu HTML checker. Install: apt-get install nodejs npm"; missing=1; fi; \
	if ! command -v java >/dev/null 2>&1; then \
	  echo "make test: java is missing; it runs the W3C Nu HTML checker. Install: apt-get install default-jre-headless"; missing=1; fi; \
	if [ ! -x /usr/bin/chromium ]; then \
	  echo "make test: /usr/bin/chromium is missing; the browser tests drive it. Install: apt-get install chromium fonts-liberation"; missing=1; fi; \
	if [ $$missing = 1 ]; then echo "make test: .ci/run installs all of these on a Debian machine (as root)."; exit 1; fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test $(VNU_JAR)
	VNU_JAR=$(abspath $(VNU_JAR)) $(BIN)/pytest --cov --cov-report=term:skip-covered \
	  --cov-fail-under=$(COVERAGE_FLOOR)

## validate: check the content against cms_schema/ and print every problem
validate: $(VENV)/.installed
	$(BIN)/headwater validate

$(BIN)/python:
	@echo "Creating the virtual environment $(VENV)/ with $$($(PYTHON) --version)"
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "Installing headwater and its dependencies into $(VENV)/ (about 20 s the first time)"
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	@echo "Installing headwater with its test tools into $(VENV)/ (a minute the first time)"
	$(PIP) install -e '.[test]'
	touch $@ $(VENV)/.installed

# The W3C Nu HTML checker, current release, from the npm registry (runs on the machine's Java).
$(VNU_JAR):
	@echo "Fetching the W3C Nu HTML checker $(VNU_VERSION) into $(TOOLS)/"
	npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix $(TOOLS) vnu-jar@$(VNU_VERSION)

## clean: remove .venv, the caches and the built sites
clean:
	rm -rf public public-preview .cache $(VENV)

## bench: time cold, no-op and incremental builds of 1,000 and 10,000 synthetic articles, local and from a local Contentful API (with the live preview)
bench: $(VENV)/.installed
	$(BIN)/python scripts/bench.py --sizes 1000,10000 --runs 3

## bench-scale: the same at 30,000 articles, once: the cost of one change must not grow with the site
bench-scale: $(VENV)/.installed
	$(BIN)/python scripts/bench.py --sizes 30000 --runs 1

## bench-compare: the same, beside cold builds by Eleventy, Pelican, Hugo and Hugo + Pagefind (installed into .cache/bench)
bench-compare: $(VENV)/.installed
	$(BIN)/python scripts/bench.py --sizes 1000,10000 --runs 3 --compare

## lighthouse: audit home and article pages with Lighthouse (mobile), needs npm and chromium
lighthouse: $(VENV)/.installed
	scripts/lighthouse.sh
