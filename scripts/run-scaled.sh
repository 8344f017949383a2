#!/usr/bin/env bash
# Starts the scaled deployment on this machine: REPLICAS (default 2) Rasa processes behind haproxy,
# the action server, the embedded helpdesk and the web chat, on PostgreSQL and Redis
# (handoff/tools/scaled.py; docs/OPERATIONS.md, "Running several Rasa processes"). Ctrl-C stops it.
# Usage: scripts/run-scaled.sh [REPLICAS]
set -uo pipefail
cd "$(dirname "$0")/.."
export REPLICAS="${1:-${REPLICAS:-2}}"
# Ports, the token checks and ACTIONS_TOKEN, as scripts/run.sh.
source scripts/service-env.sh
exec "$bin/python" -m handoff.tools.scaled --replicas "$REPLICAS"
