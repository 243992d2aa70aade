PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: install assets dev test unit lint bench bench-read bench-http

# The project installs everything it needs: the virtualenv and its packages here,
# PostgreSQL and the Mongo-wire server in tests/services/with-services.
install: $(STAMP) assets

# GraphiQL's browser assets from app/graphiql_assets/package-lock.json (npm ci, cached by
# the lock's hash outside the clone); the server serves them itself.
assets:
	app/graphiql_assets/build

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# The quick start: migrate, add the demo data (once: `orders seed` adds nothing the second
# time), then the API and the projector in one process; it prints the GraphiQL URL.
dev: install
	@$(BIN)/orders migrate
	@$(BIN)/orders seed
	@$(BIN)/orders dev

test: install
	tests/services/chromium
	tests/services/with-services $(BIN)/python -m pytest -q

unit: install
	$(BIN)/python -m pytest -q tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	tests/services/with-services $(BIN)/python -m bench.write_model

# Projector rebuild rate and steady-state lag (see bench/read_model.py --help for options).
bench-read: install
	tests/services/with-services $(BIN)/python -m bench.read_model $(ARGS)

# GraphQL over HTTP with wrk (falls back to an aiohttp client when wrk is missing).
bench-http: install
	tests/services/with-services $(BIN)/python -m bench.http $(ARGS)
