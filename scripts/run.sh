#!/usr/bin/env bash
# Starts the action server, the embedded helpdesk (unless HELPDESK_WEBHOOK_URL points elsewhere)
# and the Rasa server; prefixes each one's log lines; Ctrl-C stops all of them.
set -uo pipefail
cd "$(dirname "$0")/.."
# Ports, the token checks and ACTIONS_TOKEN, as scripts/run-scaled.sh.
source scripts/service-env.sh
model="${RASA_MODEL:-models/handoff.tar.gz}"
[ -f "$model" ] || { echo "No trained model at $model: run 'make run' (it trains first)." >&2; exit 1; }
# Every service listens on 127.0.0.1 unless told otherwise; in development another address is
# refused (handoff/exposure.py). Rasa's CORS is an allow-list: by default the web chat's origins.
export RASA_HOST="${RASA_HOST:-127.0.0.1}"
cors_origins="$("$bin/python" -m handoff.exposure --cors-origins RASA_HOST ACTIONS_HOST HELPDESK_HOST WEBCHAT_HOST)" || exit 1
read -ra cors <<< "$cors_origins"

pids=()
prefix() { local tag=$1; while IFS= read -r line; do printf '%-9s %s\n' "[$tag]" "$line"; done; }
start() {
  local tag=$1; shift
  ( "$@" 2>&1 | prefix "$tag" ) &
  pids+=($!)
}
kill_tree() { local child; for child in $(pgrep -P "$1"); do kill_tree "$child"; done; kill -TERM "$1" 2>/dev/null; }
stop() {
  trap - INT TERM EXIT
  echo "==> stopping"
  for p in "${pids[@]}"; do kill_tree "$p"; done
  wait 2>/dev/null
  exit 0
}
trap stop INT TERM EXIT

start actions "$bin/python" -m handoff.server.action_server --port "$ACTIONS_PORT"
if [ -z "${HELPDESK_WEBHOOK_URL:-}" ]; then
  start helpdesk "$bin/python" -m helpdesk
else
  echo "==> HELPDESK_WEBHOOK_URL is set: handoffs go to $HELPDESK_WEBHOOK_URL (embedded helpdesk not started)"
fi
start webchat "$bin/python" -m webchat
auth=()
[ -n "$rasa_token" ] && auth=(--auth-token "$rasa_token")
start rasa "$bin/rasa" run --enable-api "${auth[@]}" --cors "${cors[@]}" --interface "$RASA_HOST" --port "$RASA_PORT" \
  --model "$model" --credentials credentials.yml --endpoints endpoints.yml

start=$(date +%s)
until curl -fs "http://127.0.0.1:$RASA_PORT/status" ${rasa_token:+-G --data-urlencode "token=$rasa_token"} >/dev/null 2>&1; do
  sleep 1
  if [ $(( $(date +%s) - start )) -gt 300 ]; then echo "==> Rasa did not become ready in 300 s" >&2; break; fi
done
cat <<MSG
==> ready in $(( $(date +%s) - start )) s
    Rasa server      http://$RASA_HOST:$RASA_PORT   (REST: POST /webhooks/rest/webhook, socket.io web chat; CORS: ${cors[*]})
    Action server    http://${ACTIONS_HOST:-127.0.0.1}:$ACTIONS_PORT   (only for callers with ACTIONS_TOKEN)
    Agent inbox      http://127.0.0.1:$HELPDESK_PORT
    Customer chat    http://127.0.0.1:$WEBCHAT_PORT
    Ctrl-C stops everything.
MSG
wait
