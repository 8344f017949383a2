#!/usr/bin/env bash
# Starts the scaled deployment on this machine: REPLICAS (default 2) Rasa processes behind haproxy,
# the action server, the embedded helpdesk and the web chat, on PostgreSQL and Redis
# (handoff/tools/scaled.py; docs/OPERATIONS.md, "Running several Rasa processes"). Ctrl-C stops it.
# Usage: scripts/run-scaled.sh [REPLICAS]
set -uo pipefail
cd "$(dirname "$0")/.."
export REPLICAS="${1:-${REPLICAS:-2}}"
export RASA_PORT="${RASA_PORT:-5005}" ACTIONS_PORT="${ACTIONS_PORT:-5055}" HELPDESK_PORT="${HELPDESK_PORT:-5080}"
export WEBCHAT_PORT="${WEBCHAT_PORT:-5090}"
export PYTHONUNBUFFERED=1 SQLALCHEMY_SILENCE_UBER_WARNING=1 TF_CPP_MIN_LOG_LEVEL=2
# As scripts/run.sh: the model reads messages with the kernels it was trained with (Makefile).
export TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-0}"
mkdir -p var
bin=.venv/bin
# As scripts/run.sh: outside development the HTTP API of every replica needs a token.
rasa_token="${RASA_AUTH_TOKEN:-${RASA_TOKEN:-}}"
env_name="$(echo "${HANDOFF_ENV:-development}" | tr '[:upper:]' '[:lower:]' | xargs)"
case "$env_name" in development|dev|test) ;; *)
  [ -n "$rasa_token" ] || { echo "HANDOFF_ENV=$env_name but RASA_AUTH_TOKEN is not set: the Rasa HTTP API would be open to anyone who reaches port $RASA_PORT. Set RASA_AUTH_TOKEN to a long random value (python3 -c 'import secrets; print(secrets.token_hex(32))')." >&2; exit 1; } ;;
esac
# The token every replica sends the action server (endpoints.scaled.yml); derived in development.
ACTIONS_TOKEN="$("$bin/python" -m handoff.server.action_server --print-token)" || exit 1
export ACTIONS_TOKEN
exec "$bin/python" -m handoff.tools.scaled --replicas "$REPLICAS"
