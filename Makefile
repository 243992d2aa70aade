PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv installs the locked dependencies (uv.lock); it lives outside the clone, once per version.
UV_VERSION := 0.13.8
CACHE_DIR ?= $(or $(ORDERS_CACHE_DIR),$(HOME)/.cache/orders)
UV := $(CACHE_DIR)/uv-$(UV_VERSION)/bin/uv
# No Python is ever downloaded: the environment uses the machine's python3.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml uv.lock | sha256sum | cut -c1-12)

.PHONY: install assets dev test unit lint bench bench-profile bench-write bench-read bench-http bench-hostile bench-saga bench-snapshots bench-relay lock

# The project installs everything it needs: the virtualenv and its locked packages here,
# GraphiQL's assets (below), PostgreSQL and the Mongo-wire server in
# tests/services/with-services, chromium in tests/services/chromium.
install: $(STAMP) assets

$(UV):
	$(PYTHON) -m venv $(CACHE_DIR)/uv-$(UV_VERSION)
	$(CACHE_DIR)/uv-$(UV_VERSION)/bin/pip install -q uv==$(UV_VERSION)

# The project itself is reinstalled: a new top-level package (listed in pyproject.toml) is
# otherwise missing from an environment made before it existed.
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra dev --extra bench --python $(PYTHON) --quiet --reinstall-package orders
	rm -f $(VENV)/.installed-*
	touch $@

# After changing dependencies in pyproject.toml: re-resolve uv.lock (commit it).
lock: | $(UV)
	$(UV) lock --python $(PYTHON)

# GraphiQL's browser assets from app/graphiql_assets/package-lock.json (npm ci, cached by
# the lock's hash outside the clone); the server serves them itself.
assets:
	app/graphiql_assets/build

# The quick start: migrate, add the demo data (once: `orders seed` adds nothing the second
# time), then the API and the projector in one process; it prints the GraphiQL URL.
dev: install
	@$(BIN)/orders migrate
	@$(BIN)/orders seed
	@# Ctrl-C stops the server cleanly: the shell says so to make, which prints no error.
	@trap "exit 0" INT; $(BIN)/orders dev

test: install lint
	tests/services/chromium
	tests/services/with-services $(BIN)/python -m pytest -q

unit: install
	$(BIN)/python -m pytest -q tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Every benchmark beside its peers and ceilings, in one run (30 to 45 minutes): writes
# bench/results.json, bench/plots/ and the tables of README.md and bench/README.md.
# BENCH_SCALE=smoke: every benchmark briefly; ARGS=--only=http,saga: some of them.
bench: install
	bench/install-tools
	tests/services/with-services $(BIN)/python -m bench $(ARGS)

# The same under py-spy: a flame graph per benchmark in bench/profiles/ (not in git).
bench-profile: install
	bench/install-tools
	tests/services/with-services $(BIN)/python -m bench --profile $(ARGS)

# The write model's workload alone (see `python -m bench.write_model --help`).
bench-write: install
	tests/services/with-services $(BIN)/python -m bench.write_model $(ARGS)

# Projector rebuild rate and steady-state lag (see `python -m bench.read_model --help`).
bench-read: install
	tests/services/with-services $(BIN)/python -m bench.read_model $(ARGS)

# What refused and the worst accepted queries cost (embedded stores, no services needed).
bench-hostile: install
	$(BIN)/python -m bench.hostile $(ARGS)

# GraphQL over HTTP with wrk (falls back to an aiohttp client when wrk is missing).
bench-http: install
	tests/services/with-services $(BIN)/python -m bench.http $(ARGS)

# Sagas per second and submit -> confirmed latency (see `python -m bench.saga --help`).
bench-saga: install
	tests/services/with-services $(BIN)/python -m bench.saga $(ARGS)

# Reserving stock after 10 vs 10,000 earlier reservations, with and without snapshots.
bench-snapshots: install
	tests/services/with-services $(BIN)/python -m bench.snapshots $(ARGS)

# The Kafka relay: events/s from a pre-filled log and commit-to-receipt latency, each beside a
# bare transactional producer with the relay's configuration (see `python -m bench.relay --help`).
bench-relay: install
	tests/services/with-services $(BIN)/python -m bench.relay $(ARGS)
