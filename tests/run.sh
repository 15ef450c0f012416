#!/usr/bin/env bash
# Runs the test suite. As root it runs inside its own network namespace with only loopback up,
# so a test that tries to reach beyond loopback fails loudly instead of leaking a packet.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
if [ "$(id -u)" = 0 ] && [ -z "${APPLIANCE_IN_NETNS:-}" ] && unshare -n true 2>/dev/null; then
  echo "tests: running in a private network namespace (loopback only)"
  exec unshare -n env APPLIANCE_IN_NETNS=1 bash -c 'ip link set lo up && exec "$0" -m pytest "$@"' \
    "$py" "$@"
fi
if [ "${CI:-}" = true ] && [ "$(id -u)" = 0 ]; then
  echo "tests: CI as root but no private network namespace could be made" >&2
  exit 1
fi
exec "$py" -m pytest "$@"
