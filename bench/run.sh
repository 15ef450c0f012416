#!/usr/bin/env bash
# Runs the benchmarks (bench/run.py; or the module named first, e.g. `bench/run.sh bench.sound`).
# As root, inside a private network namespace with only loopback up, like the tests: nothing can
# leave the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the box may run through bench.netbox
module=bench.run
if [[ "${1:-}" == bench.* ]]; then
  module=$1
  shift
fi
# shellcheck disable=SC2016  # expanded by the inner bash
if [ "$(id -u)" = 0 ] && [ -z "${APPLIANCE_IN_NETNS:-}" ] && unshare -n true 2>/dev/null; then
  exec unshare -n env APPLIANCE_IN_NETNS=1 bash -c 'ip link set lo up && exec "$0" -m "$@"' \
    "$py" "$module" "$@"
fi
exec "$py" -m "$module" "$@"
