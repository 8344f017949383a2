# Sourced by scripts/run.sh and scripts/run-scaled.sh: the environment every service starts with,
# and the checks made before any of them starts. Run from the project root, with `bin` unset.
export RASA_PORT="${RASA_PORT:-5005}" ACTIONS_PORT="${ACTIONS_PORT:-5055}" HELPDESK_PORT="${HELPDESK_PORT:-5080}"
export WEBCHAT_PORT="${WEBCHAT_PORT:-5090}"
export PYTHONUNBUFFERED=1 SQLALCHEMY_SILENCE_UBER_WARNING=1 TF_CPP_MIN_LOG_LEVEL=2
# The model reads messages with the kernels it was trained and tested with (Makefile).
export TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-0}"
mkdir -p var
bin=.venv/bin
# The HTTP API (--enable-api) reads and changes every conversation: outside development it needs a
# token. RASA_TOKEN is the older name of RASA_AUTH_TOKEN.
rasa_token="${RASA_AUTH_TOKEN:-${RASA_TOKEN:-}}"
env_name="$(echo "${HANDOFF_ENV:-development}" | tr '[:upper:]' '[:lower:]' | xargs)"
case "$env_name" in development|dev|test) ;; *)
  [ -n "$rasa_token" ] || { echo "HANDOFF_ENV=$env_name but RASA_AUTH_TOKEN is not set: the Rasa HTTP API would be open to anyone who reaches port $RASA_PORT. Set RASA_AUTH_TOKEN to a long random value (python3 -c 'import secrets; print(secrets.token_hex(32))')." >&2; exit 1; } ;;
esac
# The action server runs actions only for callers with this token; the endpoints make Rasa send
# it. Unset in development: derived from HELPDESK_SECRET. Outside development it is required.
ACTIONS_TOKEN="$("$bin/python" -m handoff.server.action_server --print-token)" || exit 1
export ACTIONS_TOKEN
