#!/usr/bin/env bash
# Creates .venv on Python 3.10 and installs the pinned requirements and this project (editable).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)'; then
  py=$(scripts/find-python310.sh)
  echo "==> creating .venv with $py"
  rm -rf .venv
  "$py" -m venv .venv
fi
echo "==> installing pinned requirements (Rasa takes a few minutes the first time)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip==24.0" "wheel==0.45.1"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
touch .venv/.installed
echo "==> installed in $(( $(date +%s) - start )) s"
