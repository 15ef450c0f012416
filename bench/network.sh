#!/usr/bin/env bash
# Runs a network benchmark (bench/network.py, bench/soak.py, bench/soakday.py, bench/relayload.py)
# as root inside a private network namespace with only loopback up: the impairment rig refuses to
# run anywhere else.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON_BIN:-.venv/bin/python}
module=${1:?usage: bench/network.sh bench.network|bench.soak|bench.soakday [args]}
shift
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${APPLIANCE_IN_NETNS:-}" ]; then
  exec unshare -n env APPLIANCE_IN_NETNS=1 bash -c 'ip link set lo up && exec "$0" -m "$@"' \
    "$py" "$module" "$@"
fi
exec "$py" -m "$module" "$@"
