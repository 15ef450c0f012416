#!/usr/bin/env bash
# Runs the benchmarks. As root, inside a private network namespace with only loopback up, like
# the tests: nothing can leave the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
if [ "$(id -u)" = 0 ] && [ -z "${APPLIANCE_IN_NETNS:-}" ] && unshare -n true 2>/dev/null; then
  exec unshare -n env APPLIANCE_IN_NETNS=1 bash -c 'ip link set lo up && exec "$0" -m bench.run "$@"' \
    "$py" "$@"
fi
exec "$py" -m bench.run "$@"
