#!/usr/bin/env bash
# Creates .venv at the repository root and installs zkauction with its test extras.
# torch 2.13.0 goes first: it is a CPU build on this machine's disk, and the project's torch range
# is satisfied by it, so pip never pulls a multi-GB CUDA build. Re-running is cheap (a stamp file
# records what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.zkauction-setup
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet torch==2.13.0
  .venv/bin/python -m pip install --quiet -e '.[test]'
  echo "$want" > "$stamp"
fi
# ezkl caches under ~/.ezkl unless told otherwise: keep it inside the project.
mkdir -p .ezkl
