# The two commands of the quickstart are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit e2e js bench soak clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## start the gateway with the in-memory broker and a demo stream
	$(BIN)/eventwire serve --demo --insecure --allow-pattern-subscriptions

system-deps:  ## redis-server, nats-server, chromium, node: apt-get installs what is missing
	scripts/system-deps.sh

test: $(STAMP) system-deps lint  ## everything CI runs
	EVENTWIRE_REQUIRE_REDIS=1 EVENTWIRE_REQUIRE_NATS=1 $(BIN)/pytest
	EVENTWIRE_REQUIRE_NPM=1 $(MAKE) js

js: $(STAMP)  ## the JavaScript client: unit and end-to-end tests against real gateways (Node 20+)
	cd clients/js && EVENTWIRE_PYTHON=$(abspath $(BIN)/python) npm test

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

bench: $(STAMP)  ## measure against a websockets.broadcast() baseline; writes docs/benchmarks.md
	$(BIN)/python -m bench

soak: $(STAMP)  ## chaos soak on Redis then NATS (SOAK_SECONDS, SOAK_BROKERS, SOAK_SEED); writes docs/soak.md
	$(BIN)/python -m bench.soak --docs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
