#!/usr/bin/env bash
# Build Switchboard, start it on a throw-away SQLite database and a free port, and run the
# scim2-tester conformance checks against it (conformance/check.py). Runnable from anywhere.
#
#   conformance/run.sh [check.py options...]     e.g.  --resource-type User -v
#
# Environment:
#   SWITCHBOARD_BIN  use this binary instead of `cargo build` + target/debug/switchboard
#   PYTHON           interpreter for the venv (default python3; needs >= 3.11)
#   KEEP_WORK=1      keep conformance/.work/run.* even when every check passed
#   HEALTH_TIMEOUT   seconds to wait for /healthz (default 60)
#
# Exit status: check.py's (0 all passed or expected, 1 unexpected failures, 2 harness
# error); 2 as well when the server cannot be built, set up or started.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-60}"
VENV="$HERE/.venv"
REQS="$HERE/requirements.txt"

log() { printf 'conformance: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# ---- the checker's venv (first: it needs no server, and fails fast if PyPI is unreachable)
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PYTHON is older than 3.11, which scim2-tester requires (set PYTHON=...)"
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV" || die "cannot create the venv"
fi
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]]; then
  log "installing $REQS"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQS" \
    || die "pip install failed"
  echo "$WANT" > "$STAMP"
fi

# ---- the server binary
if [[ -n "${SWITCHBOARD_BIN:-}" ]]; then
  BIN="$SWITCHBOARD_BIN"
else
  log "cargo build"
  cargo build --bin switchboard || die "cargo build failed"
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/switchboard"
fi
[[ -x "$BIN" ]] || die "no executable at $BIN"

# ---- a throw-away database
mkdir -p "$HERE/.work"
DIR="$(mktemp -d "$HERE/.work/run.XXXXXX")"
DB="sqlite://$DIR/switchboard.db"
log "work dir $DIR"

"$BIN" migrate --database "$DB" > "$DIR/setup.log" 2>&1 \
  || { cat "$DIR/setup.log" >&2; die "migrate failed"; }
"$BIN" account create conformance --database "$DB" >> "$DIR/setup.log" 2>&1 \
  || { cat "$DIR/setup.log" >&2; die "account create failed"; }
TOKEN="$("$BIN" token create --account conformance --role super-admin --database "$DB" 2>> "$DIR/setup.log")" \
  || { cat "$DIR/setup.log" >&2; die "token create failed"; }
TOKEN="$(printf '%s' "$TOKEN" | tr -d '[:space:]')"
[[ -n "$TOKEN" ]] || die "token create printed no token"

# ---- the server, on a free port, always stopped on exit
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
SERVER_PID=""
STATUS=2
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "$STATUS" == 0 && -z "${KEEP_WORK:-}" ]]; then
    rm -rf "$DIR"
  else
    log "kept $DIR (server.log, report.json)"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting $BIN serve on 127.0.0.1:$PORT"
"$BIN" serve --listen "127.0.0.1:$PORT" --database "$DB" --mail-dir "$DIR/mail" > "$DIR/server.log" 2>&1 &
SERVER_PID=$!

BASE="http://127.0.0.1:$PORT"
deadline=$((SECONDS + HEALTH_TIMEOUT))
until "$PYTHON" -c 'import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)' "$BASE/healthz"; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "the server exited before it was healthy; last lines of $DIR/server.log:"
    tail -n 50 "$DIR/server.log" >&2 || true
    exit 2
  fi
  if (( SECONDS >= deadline )); then
    log "no 200 from $BASE/healthz after ${HEALTH_TIMEOUT}s; last lines of $DIR/server.log:"
    tail -n 50 "$DIR/server.log" >&2 || true
    exit 2
  fi
  sleep 0.5
done
log "server healthy at $BASE"

# ---- the checks (token through the environment, not the command line)
set +e
SCIM_TOKEN="$TOKEN" "$VENV/bin/python" "$HERE/check.py" \
  --url "$BASE/scim/v2" \
  --seed-catalogue \
  --expected-failures "$HERE/expected-failures.txt" \
  --report "$DIR/report.json" \
  "$@"
STATUS=$?
set -e
cp "$DIR/report.json" "$HERE/.work/last-report.json" 2>/dev/null || true
exit "$STATUS"
