# Every command of the project. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
MODEL := models/handoff.tar.gz
TRAINING_FILES := domain.yml config.yml $(shell find data -name '*.yml' 2>/dev/null)

export RASA_PORT ?= 5005
export ACTIONS_PORT ?= 5055
export HELPDESK_PORT ?= 5080
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export TF_CPP_MIN_LOG_LEVEL := 2
# TensorFlow's oneDNN kernels are chosen by the CPU's instruction set (AVX2, AVX-512, AMX): with them
# the same training data gave different DIET weights on two machines, and borderline messages other
# intents. Without them TensorFlow runs its own kernels, the same whatever the CPU offers.
export TF_ENABLE_ONEDNN_OPTS := 0
export RASA_TELEMETRY_ENABLED := false
# Rasa 3.6 and its dependencies print pages of deprecation warnings; they say nothing about this project.
export PYTHONWARNINGS := ignore::DeprecationWarning,ignore::PendingDeprecationWarning

.PHONY: help install run run-scaled shell train validate lint eval test test-unit test-services test-stories test-nlu test-e2e browsers haproxy clean bench bench-locks

help: ## List the commands
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv (Python 3.10) and install the pinned dependencies

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	scripts/install.sh

train: $(MODEL) ## Train the model when data, domain or config changed

$(MODEL): $(VENV)/.installed $(TRAINING_FILES)
	@echo "==> training (5 to 10 minutes on 2 cores)"
	@start=$$(date +%s); $(BIN)/rasa train --fixed-model-name handoff --out models --quiet \
		&& touch $(MODEL) && echo "==> trained in $$(( $$(date +%s) - start )) s"

run: install train ## Start Rasa (:5005), the action server (:5055) and the agent inbox (:5080)
	scripts/run.sh

run-scaled: install train haproxy ## REPLICAS Rasa processes behind haproxy on PostgreSQL and Redis (docs/OPERATIONS.md) [REPLICAS=2]
	scripts/run-scaled.sh $(REPLICAS)

shell: install train ## Chat in the terminal (a second Rasa process on :5006; needs `make run` running)
	@mkdir -p var
	@token=$$($(BIN)/python -m handoff.server.action_server --print-token) || exit 1; \
	  ACTIONS_TOKEN="$$token" $(BIN)/rasa shell --model $(MODEL) --endpoints endpoints.yml --interface 127.0.0.1 --port 5006

validate: install ## Check training data, domain and handoff_rules.yml
	$(BIN)/rasa data validate --fail-on-warning --quiet
	$(BIN)/python -m handoff.tools.validate

lint: install ## Static checks of the Python code, and the import layers (pyproject.toml)
	$(BIN)/ruff check handoff helpdesk actions webchat tests scripts
	$(BIN)/lint-imports --no-cache

test-unit: install ## Fast tests (tests/unit and beside it), no PostgreSQL or Redis needed
	$(BIN)/pytest -m "not e2e and not postgres and not redis" -q

test-services: install ## The fast tests that need PostgreSQL or Redis (markers postgres, redis; CI provides both)
	$(BIN)/pytest -m "not e2e and (postgres or redis)" -q

test-stories: train ## Dialogue paths in tests/test_stories.yml: every action exact, at most 5 customer messages misread
	@mkdir -p var
	@rm -rf results/core
	$(BIN)/rasa test core --stories tests/test_stories.yml --model $(MODEL) --out results/core --e2e --quiet
	$(BIN)/python scripts/check_stories.py results/core

test-nlu: train ## NLU targets: held-out regression sets, and the handoff decision on independent sets (tests/eval)
	$(BIN)/python scripts/evaluate_nlu.py --check --out results/eval
	$(BIN)/python scripts/evaluate_handoff.py --check --out results/eval

eval: train ## Quality report: the handoff decision on independent sets per language, held-out sets, cross-validation (results/eval)
	$(BIN)/python scripts/evaluate_handoff.py --out results/eval
	$(BIN)/python scripts/evaluate_nlu.py --out results/eval
	$(BIN)/rasa test nlu --nlu data/nlu --cross-validation --folds 3 --out results/eval/cross-validation --quiet
	@echo "==> results/eval/handoff-eval.md (+ handoff-confusion-en.png, -nl.png), heldout.md, cross-validation/intent_report.json"

browsers: ## Install Chromium for the browser tests (Debian's package) when it is missing
	@if [ -x /usr/bin/chromium ]; then echo "==> $$(/usr/bin/chromium --version 2>/dev/null || echo chromium) is installed"; \
	else sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y chromium; fi

haproxy: ## Install haproxy (Debian's package) for the scaled deployment when it is missing
	@if command -v haproxy >/dev/null 2>&1; then echo "==> $$(haproxy -v 2>/dev/null | head -1) is installed"; \
	else sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y haproxy; fi

test-e2e: train browsers haproxy ## The real Rasa server and action server on loopback, the whole handoff loop
	$(BIN)/pytest -m e2e -q

test-scaled: train haproxy ## The scaled deployment's failover test alone (2 replicas, haproxy, a replica killed; also in make test-e2e)
	$(BIN)/pytest -m scaled -q

test: lint validate test-unit test-services test-stories test-nlu test-e2e ## Everything, in CI order (installs and trains when needed)

bench: train $(if $(REPLICAS),haproxy) ## Load benchmark vs a bare Rasa bot; with REPLICAS=2: 1 vs 2 replicas behind haproxy, and a failover run
	$(BIN)/python $(if $(REPLICAS),scripts/bench_scaled.py --replicas $(REPLICAS),scripts/bench.py) $(BENCH_ARGS)

bench-locks: install ## The conversation lock in Redis: Rasa's store against the project's, alone and with 4 processes on one conversation
	$(BIN)/python scripts/bench_lock_store.py $(BENCH_ARGS)

.PHONY: report review
report: install ## Handoff analytics: results/report/report.html (plots) and report.csv [REPORT_ARGS="--days 30"]
	$(BIN)/python -m handoff.tools.report $(REPORT_ARGS)

review: install ## Training-data candidates from handoffs and misunderstood turns: results/review/candidates.yml [REVIEW_ARGS=...]
	$(BIN)/python -m handoff.tools.review $(REVIEW_ARGS)

.PHONY: outbox
outbox: install ## List deliveries to the helpdesk that are stuck or expired
	$(BIN)/python -m handoff.tools.outbox_cli $(OUTBOX_ARGS)

.PHONY: forget retention
forget: install ## Erase a customer's conversations from every store: make forget CUSTOMER=<id, email or phone> [FORGET_ARGS=--dry-run]
	@if [ -z "$$CUSTOMER" ]; then \
		echo "make forget: say whose conversations to erase: make forget CUSTOMER=<customer id, email or phone>" >&2; \
		echo "             (FORGET_ARGS=--dry-run lists what would be erased and changes nothing)" >&2; exit 2; fi
	$(BIN)/python -m handoff.tools.privacy_cli forget --customer "$$CUSTOMER" $(FORGET_ARGS)

retention: install ## Erase now what is past HANDOFF_RETENTION_DAYS (90), as the servers do hourly [FORGET_ARGS=--dry-run]
	$(BIN)/python -m handoff.tools.privacy_cli expire $(FORGET_ARGS)

clean: ## Remove the model, results and local databases (keeps .venv)
	rm -rf models results var .pytest_cache
