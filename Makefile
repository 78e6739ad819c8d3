# Two set-up commands (see README): `make demo` runs Tally, `make test` runs the whole suite.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
VENDOR := src/tally/web/static/vendor

.PHONY: demo test install install-dev assets lint

demo: install
	$(BIN)/tally serve --demo

# The suite runs on two pytest-xdist workers, each with its own PostgreSQL server, SQLite
# template and Chromium (`make test PYTEST_ARGS=` runs it in one process). Compiled modules
# are kept in __pycache__ (git-ignored) even where the environment says not to write them: a
# worker then collects the suite in about 8 s instead of 12-17 s.
PYTEST_ARGS ?= -n 2 --dist worksteal

test: install-dev
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest $(PYTEST_ARGS)

install: $(VENV)/.installed assets
install-dev: $(VENV)/.installed-dev assets

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

assets: $(VENDOR)/.installed

$(VENDOR)/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx.min.js
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css $(VENDOR)/
	touch $@

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
