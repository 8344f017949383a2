#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter (Rasa 3.6 runs on 3.8-3.10 only), or explains and fails.
set -euo pipefail
candidates=()
[ -n "${PYTHON310:-}" ] && candidates+=("$PYTHON310")
candidates+=(python3.10)
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null || true)
  for d in "$root"/versions/3.10*; do [ -x "$d/bin/python" ] && candidates+=("$d/bin/python"); done
fi
for d in "$HOME"/.pyenv/versions/3.10* /usr/local/bin/python3.10 /usr/bin/python3.10; do
  [ -e "$d" ] || continue
  [ -d "$d" ] && candidates+=("$d/bin/python") || candidates+=("$d")
done
for c in "${candidates[@]}"; do
  if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null; then
    command -v "$c"; exit 0
  fi
done
cat >&2 <<'MSG'
No Python 3.10 interpreter found. Rasa Open Source 3.6 installs only on Python 3.8-3.10.
Install one, then run the command again:
  - with pyenv:   pyenv install 3.10.13
  - on Debian:    apt-get install python3.10 python3.10-venv   (where the release has it)
  - or point to one: PYTHON310=/path/to/python3.10 make install
MSG
exit 1
