# The township digital cockpit (数字驾驶舱). `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SCALE ?= town
SEED ?= 1
PORT ?= 8501
N ?= 2
ADDRESS ?= 127.0.0.1
SIM_RATE ?= 6
# DEMO=1: the Quzhou demo (seeded store, demo accounts, live simulator). DEMO=0: your own area — an empty
# store, no demo account, no simulator (README「使用自己的区划」).
DEMO ?= 1

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.runtime: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "需要 Python 3.11 ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.runtime ## Create .venv with the runtime dependencies

store: $(VENV)/.runtime ## Create the store if absent (the town demo; DEMO=0: empty, for your own area), else migrate it
	$(PY) -m demo.bootstrap --scale $(SCALE) --seed $(SEED) $(if $(filter 0,$(DEMO)),--no-demo)

run: store ## Set up, then start the jobs runner, the simulator (demo stores only; DEMO=0: never) and the app on :8501
	@$(PY) -m demo.bootstrap --print-accounts --port $(PORT)
	@trap 'trap - EXIT INT TERM; kill $$(jobs -p) 2>/dev/null' EXIT INT TERM; \
	$(PY) -m services.jobs --every 60 & \
	if [ "$(DEMO)" != "0" ] && $(PY) -m demo.bootstrap --is-demo; then $(PY) -m demo.simulator --rate $(SIM_RATE) & fi; \
	$(PY) -m streamlit run serve.py --server.address $(ADDRESS) --server.port $(PORT) --server.headless true

jobs: $(VENV)/.runtime ## Run the jobs runner alone (上移, 督办 reminders, 预警, scheduled reports, audit check), a pass every 60 s
	$(PY) -m services.jobs --every 60

seed: $(VENV)/.runtime ## (Re)seed the store from scratch: make seed SCALE=town|city SEED=n
	$(PY) -m demo.seed --scale $(SCALE) --seed $(SEED) --force

test: $(VENV)/.dev ## Set up and run the whole suite (DATABASE_URL picks the store; default a temporary SQLite)
	$(PY) -m pytest -q -n 2 --dist loadgroup --ignore=tests/e2e
	# The browser tests after the rest, one at a time: software WebGL on a machine shared with a
	# second test worker starved the map's clicks (decision 0011).
	$(PY) -m pytest -q -n 0 tests/e2e

soak: $(VENV)/.dev ## The wall screen soak: 1-second refresh for 10 minutes, server memory and browser console
	SOAK_SECONDS=600 $(PY) -m pytest -q -s tests/e2e/test_big_screen.py -k soak

lint: $(VENV)/.dev ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.dev ## mypy: strict on domain/, normal on services/, db/ and geo/
	$(VENV)/bin/mypy

bench: $(VENV)/.dev ## Measure the figures: make bench SCALE=town|city [BENCH_DATABASE_URL=postgresql+psycopg://…] (writes bench/results/<scale>[.postgresql].json)
	$(PY) -m bench --scale $(SCALE) --seed $(SEED)

cluster: store ## N app replicas behind nginx on DATABASE_URL (PostgreSQL for real use): make cluster N=2 [PORT=8501]
	$(PY) -m deploy.cluster --replicas $(N) --port $(PORT) --address $(ADDRESS)

audit-verify: $(VENV)/.runtime ## Verify the audit trail's hash chain on DATABASE_URL (default data/cockpit.db); exit 1 at the first broken row
	$(PY) -m services.audit verify

migrate: $(VENV)/.runtime ## Apply pending migrations to DATABASE_URL (default data/cockpit.db)
	$(PY) -m db.migrate

.PHONY: help venv store run jobs seed test lint typecheck bench migrate soak audit-verify
