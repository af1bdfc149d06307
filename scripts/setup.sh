#!/usr/bin/env bash
# Creates .venv at the repository root and installs zkauction with its test extras.
# zkauction needs Python 3.11 (ezkl's wheels and the pinned torch build are made for it): the
# script uses $PYTHON if set, else python3.11, else python3 if it is 3.11, else pyenv's 3.11; with
# none it says what to install and exits 2. A .venv made with another Python is rebuilt.
# torch 2.13.0 goes first: it is a CPU build on this machine's disk, and the project's torch range
# is satisfied by it, so pip never pulls a multi-GB CUDA build. Re-running is cheap (a stamp file
# records what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."
WANT=3.11

is_wanted() {  # is_wanted PYTHON: does it run and report version $WANT?
  [ -n "$1" ] && [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$WANT" ]
}

find_python() {
  local candidates=("${PYTHON:-}" python3.11 python3)
  local root
  if command -v pyenv >/dev/null 2>&1 && root=$(pyenv root 2>/dev/null); then
    candidates+=("$root"/versions/$WANT*/bin/python$WANT)
  fi
  candidates+=("$HOME"/.pyenv/versions/$WANT*/bin/python$WANT)
  local p
  for p in "${candidates[@]}"; do
    if [ -n "$p" ] && command -v "$p" >/dev/null 2>&1 && is_wanted "$p"; then
      command -v "$p"
      return 0
    fi
  done
  return 1
}

if ! PY=$(find_python); then
  {
    echo "error: zkauction needs Python $WANT and none was found (tried \$PYTHON, python$WANT, python3, pyenv)."
    echo "Install it, then re-run this script, with one of:"
    echo "  Debian/Ubuntu:  sudo apt-get install python$WANT python$WANT-venv"
    echo "  Fedora:         sudo dnf install python$WANT"
    echo "  macOS:          brew install python@$WANT"
    echo "  pyenv:          pyenv install $WANT"
    echo "or point PYTHON at a Python $WANT: PYTHON=/path/to/python$WANT bash scripts/setup.sh"
  } >&2
  exit 2
fi

if [ -e .venv ] && ! is_wanted .venv/bin/python; then
  had=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo "a broken Python")
  echo "setup: .venv was made with Python $had, not $WANT: rebuilding it with $PY" >&2
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.zkauction-setup
want=$(cat pyproject.toml setup.py scripts/setup.sh zkauction/zk/_poseidon.c zkauction/zk/_poseidon_params.h | sha256sum | cut -d' ' -f1)
native() { .venv/bin/python -c 'import zkauction.zk._poseidon' >/dev/null 2>&1; }
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! native; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet torch==2.13.0
  .venv/bin/python -m pip install --quiet -e '.[test]'
  echo "$want" > "$stamp"
  if ! native; then  # setup.py marks it optional: the package works without it, more slowly
    echo "setup: warning: the C Poseidon extension did not build (no C compiler or no Python headers);" \
      "commitments fall back to ezkl.poseidon_hash, about 15 times slower" >&2
  fi
fi
# ezkl caches under ~/.ezkl unless told otherwise: keep it inside the project.
mkdir -p .ezkl
