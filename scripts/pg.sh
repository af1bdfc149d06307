#!/usr/bin/env bash
# A throwaway local PostgreSQL for the tests: scripts/pg.sh start|stop|url
#   start  installs PostgreSQL from Debian packages if initdb/pg_ctl are missing (needs root or
#          passwordless sudo), creates a fresh cluster in a temporary folder, starts it listening
#          only on 127.0.0.1 (a free port) and on a unix socket in that folder, trust auth (local
#          connections only), creates the database zkauction_test and prints its URL.
#          A cluster left by an earlier run (killed before `stop`) is stopped and removed first.
#   stop   stops the server and removes its folder (nothing to stop is not an error).
#   url    prints the URL of the running server (exit 1 if none).
# State lives in .pg/ at the repository root (git-ignored). Running as root, the cluster belongs to
# the `postgres` system user (PostgreSQL refuses to run as root) and its folder is under $TMPDIR or
# /tmp, where that user can reach it. Usage in CI: see .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.pg
DB=zkauction_test

say() { echo "pg.sh: $*" >&2; }

find_bin() {  # the newest /usr/lib/postgresql/*/bin with initdb, else the PATH's
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return 0
  fi
  return 1
}

install_pg() {
  say "initdb/pg_ctl not found: installing PostgreSQL (apt-get install postgresql)"
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
      say "error: installing PostgreSQL needs root; run: sudo apt-get install -y postgresql"; exit 2
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || { say "error: no apt-get here: install PostgreSQL (initdb, pg_ctl) yourself"; exit 2; }
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  # postgresql-common would create and start a system cluster: tell it not to
  "${sudo[@]}" mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" | "${sudo[@]}" tee /etc/postgresql-common/createcluster.d/zkauction.conf >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

as_owner() {  # run a command as the cluster's owner: `postgres` when we are root, else ourselves
  if [ "$(id -u)" = 0 ]; then
    if command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
  else
    "$@"
  fi
}

free_port() {
  local py p
  for py in python3 python; do
    if command -v "$py" >/dev/null 2>&1; then
      "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' && return 0
    fi
  done
  p=$((20000 + RANDOM % 20000)); echo "$p"
}

stop_pg() {
  [ -d "$STATE" ] || return 0
  local dir bin
  dir=$(cat "$STATE/dir" 2>/dev/null || true)
  bin=$(cat "$STATE/bin" 2>/dev/null || true)
  if [ -n "$dir" ] && [ -d "$dir/data" ]; then
    if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
        || as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    local pid
    pid=$(head -1 "$dir/data/postmaster.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q postgres "/proc/$pid/cmdline" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true  # a server pg_ctl could not stop: ours, by its pid file
    fi
  fi
  case "$dir" in */zkauction-pg.*) rm -rf "$dir" ;; esac
  rm -rf "$STATE"
}

start_pg() {
  if [ -d "$STATE" ]; then say "removing a cluster left by an earlier run"; stop_pg; fi
  trap 'rc=$?; if [ $rc != 0 ]; then stop_pg; fi' EXIT  # a failed start leaves nothing behind
  local bin dir port url i
  bin=$(find_bin) || { install_pg; bin=$(find_bin) || { say "error: initdb not found after installing"; exit 2; }; }
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    say "error: running as root and there is no postgres user to own the cluster"; exit 2
  fi
  mkdir -p "$STATE"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/zkauction-pg.XXXXXX")
  echo "$dir" > "$STATE/dir"
  echo "$bin" > "$STATE/bin"
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; say "error: initdb failed"; exit 1; }
  for i in 1 2 3 4 5; do  # a port taken between the choice and the start: choose again
    port=$(free_port)
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=100" start >/dev/null 2>&1; then
      echo "$port" > "$STATE/port"
      url="postgresql://postgres@127.0.0.1:$port/$DB"
      as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB" >&2
      echo "$url" > "$STATE/url"
      echo "$url"
      return 0
    fi
    say "the server did not start on port $port (try $i):"; tail -5 "$dir/server.log" >&2 || true
  done
  say "error: PostgreSQL would not start (log: $dir/server.log)"; exit 1
}

case "${1:-}" in
  start) start_pg ;;
  stop) stop_pg ;;
  url) if [ -f "$STATE/url" ]; then cat "$STATE/url"; else say "no server (scripts/pg.sh start)"; exit 1; fi ;;
  *) echo "usage: scripts/pg.sh start|stop|url" >&2; exit 2 ;;
esac
