#!/usr/bin/env bash
# Installs Debian's Chromium (/usr/bin/chromium) for the web view's browser tests (tests/test_web.py,
# driven by Playwright for Python with executable_path=/usr/bin/chromium; `playwright install` is never
# run). Does nothing when /usr/bin/chromium is already there. Needs root (or passwordless sudo) and
# the distribution's package mirror; exits non-zero with a message saying why when it cannot.
set -euo pipefail
CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "chromium: $("$CHROMIUM" --version 2>/dev/null || echo present) at $CHROMIUM"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "error: $CHROMIUM is missing and installing it needs root (run this script as root, or with passwordless sudo)." >&2
  exit 2
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: $CHROMIUM is missing and apt-get is not available: install Chromium with this system's package manager." >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
echo "installing chromium with apt-get (quiet)..."
if ! "${SUDO[@]}" apt-get update -qq >/dev/null; then
  echo "error: apt-get update failed (is the package mirror reachable?)" >&2
  exit 3
fi
if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
  echo "error: apt-get install chromium failed" >&2
  exit 3
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "error: the chromium package is installed but $CHROMIUM is not there" >&2
  exit 4
fi
echo "chromium: $("$CHROMIUM" --version 2>/dev/null || echo installed) at $CHROMIUM"
