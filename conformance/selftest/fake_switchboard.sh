#!/usr/bin/env bash
# Stand-in for the switchboard binary, for testing run.sh and check.py without the Rust
# server:  SWITCHBOARD_BIN=conformance/selftest/fake_switchboard.sh conformance/run.sh
# It accepts the CLI calls run.sh makes and serves selftest/fake_server.py (an in-memory
# SCIM server built on scim2-models). Extra fake_server.py flags: FAKE_SERVER_ARGS.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOKEN="selftest-token"
case "${1:-} ${2:-}" in
  "migrate "*) echo "migrated (fake)" ;;
  "account create") echo "account $3 created (fake)" ;;
  "token create") echo "$TOKEN" ;;
  "serve "*)
    shift
    listen=""
    while [[ $# -gt 0 ]]; do
      case "$1" in --listen) listen="$2"; shift 2 ;; *) shift ;; esac
    done
    # shellcheck disable=SC2086
    exec "$HERE/../.venv/bin/python" "$HERE/fake_server.py" --port "${listen##*:}" --token "$TOKEN" ${FAKE_SERVER_ARGS:-}
    ;;
  *) echo "fake_switchboard: unsupported: $*" >&2; exit 64 ;;
esac
