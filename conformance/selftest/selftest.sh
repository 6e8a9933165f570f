#!/usr/bin/env bash
# Test the harness itself (run.sh + check.py) against the fake server, no Rust build:
#   conformance/selftest/selftest.sh
# Checks the exit-code contract: 0 when all pass, 1 on an unexpected failure, 0 again when
# that failure is listed as expected, and 2 when the server never becomes healthy.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN="$HERE/../run.sh"
export SWITCHBOARD_BIN="$HERE/fake_switchboard.sh"
pass=0; fail=0
expect() {  # expect CODE NAME -- command...
  local want="$1" name="$2"; shift 3
  local got=0
  "$@" > /dev/null 2>&1 || got=$?
  if [[ "$got" == "$want" ]]; then pass=$((pass + 1)); echo "ok   $name"
  else fail=$((fail + 1)); echo "FAIL $name: exit $got, wanted $want"; fi
}
XF="$(mktemp)"; trap 'rm -f "$XF"' EXIT
printf '%s\n' 'service_provider_config_endpoint_methods  # fake breaks it' \
  'resource_types_endpoint_methods  # fake breaks it' 'schemas_endpoint_methods  # fake breaks it' > "$XF"

expect 0 "conforming fake server passes" -- "$RUN"
expect 1 "unexpected failures fail the run" -- env FAKE_SERVER_ARGS=--break-discovery-methods "$RUN" --include-tag discovery
expect 0 "expected failures do not" -- env FAKE_SERVER_ARGS=--break-discovery-methods "$RUN" --include-tag discovery --expected-failures "$XF"
expect 0 "PATCH unsupported in ServiceProviderConfig: skipped, not failed" -- env FAKE_SERVER_ARGS=--no-patch "$RUN" --include-tag patch
expect 2 "a server that never gets healthy is a harness error" -- env HEALTH_TIMEOUT=2 FAKE_SERVER_ARGS=--no-such-flag "$RUN"
ROOT="$(cd "$HERE/../.." && pwd)"
if [[ -d "$ROOT/schemas/resource-types" ]]; then
  # The repo's own published schemas, served by a generic in-memory server: shows they are
  # consumable by scim2-tester (not that Switchboard implements them).
  expect 0 "repo schemas/ pass with a generic server" -- \
    env FAKE_SERVER_ARGS="--schemas-dir $ROOT/schemas" "$RUN" --resource-type User --resource-type Group
fi
echo "selftest: $pass passed, $fail failed"
[[ "$fail" == 0 ]]
