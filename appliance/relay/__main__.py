"""`appliance relay serve --config relay.toml` and `appliance relay hash-token`."""

from __future__ import annotations

import argparse
import gc
import getpass
import signal
import sys
import threading

from .. import logs
from ..errors import ConfigError
from . import config as relay_config
from .aioserver import AsyncRelayServer

#: The collector's thresholds for `appliance relay serve` (Python's: 700, 10, 10). A long poll's
#: objects live seconds, so the default young passes promote them by the thousand, and a process
#: holding 2,000 polls ran a full pass (235-270 ms: every poll and connection walked) every 1.5 s
#: while it took over a killed process's polls, and every 5-7 s after (gc.callbacks, one run).
#: A young pass every 50,000 allocations lets a request's objects die by their count first: no
#: full pass in that run's two minutes; cycles are still collected (docs/performance.md).
GC_THRESHOLDS = (50_000, 20, 20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="appliance relay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the relay")
    serve.add_argument("--config", required=True, help="relay.toml (docs/relay.md)")
    serve.add_argument("--log-level", default="INFO")
    sub.add_parser("hash-token", help="read a box token on stdin, print its hash for `boxes`")
    args = parser.parse_args(argv)
    if args.command == "hash-token":
        token = getpass.getpass("box token: ") if sys.stdin.isatty() else sys.stdin.readline()
        token = token.strip()
        if len(token) < 24:
            print("a box token has at least 24 characters", file=sys.stderr)
            return 2
        print(relay_config.hash_token(token))
        return 0
    try:
        cfg = relay_config.load(args.config)
    except ConfigError as exc:
        print(f"appliance relay: {exc}", file=sys.stderr)
        return 2
    logs.setup(args.log_level)
    server = AsyncRelayServer(cfg).start()
    # what is loaded by now lives as long as the process: out of the collector's full passes,
    # which then walk only the connections and polls (a pause of 100-150 ms at 2,000 polls
    # otherwise, measured by bench/relayload.py: docs/performance.md)
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
