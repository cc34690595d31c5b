# Two commands for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Each target's stamp notes what was installed; pyproject.toml changes reinstall.
INSTALLED := $(VENV)/.installed
INSTALLED_TEST := $(VENV)/.installed-test

.PHONY: serve test lint typecheck schema web-documents screenshots migrations clean bench

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (set PYTHON=python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(INSTALLED): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

$(INSTALLED_TEST): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(INSTALLED) $@

serve: $(INSTALLED)
	$(BIN)/portal migrate
	$(BIN)/portal ensure-demo
	$(BIN)/portal serve

test: $(INSTALLED_TEST)
	$(BIN)/pytest

# Sign-in and search beside raw baselines on PostgreSQL (bench/__main__.py);
# not part of `make test`: benchmarks hold ratios, tests never hold timings.
bench: $(INSTALLED_TEST)
	$(BIN)/python -m bench

lint: $(INSTALLED_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED_TEST)
	$(BIN)/mypy

# Rewrites schema.graphql and clients/possible-types.json from the code (a
# test fails while either is stale).
schema: $(INSTALLED)
	$(BIN)/python -c 'from graph.schema import schema; print(schema.as_str())' > schema.graphql
	$(BIN)/python -m graph.clients > clients/possible-types.json

# Rewrites the web app's trusted-documents manifest and its documentIds
# (portal/web/trusted-documents.json, portal/web/js/documents.js) from
# portal/web/documents/*.graphql; a test fails while either is stale.
web-documents: $(INSTALLED)
	$(BIN)/python -m graph.web_documents

# Rewrites docs/screenshots/*.png, the web app's main pages at desktop and
# 360 px wide (needs Chromium, as the browser tests do).
screenshots: $(INSTALLED_TEST)
	$(BIN)/python -m tests.browser.screenshots

# After changing models/: writes the next migration into models/migrations/.
migrations: $(INSTALLED)
	$(BIN)/tortoise makemigrations

clean:
	rm -rf $(VENV)
