"""`appliance run --demo` with its media on its own loopback address, and its rate decisions logged.

The network benchmarks impair box -> phone only, which the rig picks out by source address: the
demo keeps its web server and relay on 127.0.0.1, and this launcher gives its peers ``--media``
(127.0.0.2) instead of the demo's 127.0.0.1. Every rate-control round (5 a second) is appended
to ``--decisions`` as a JSON line (time, target, encoder rate, rate sent, step, stall, RTT, REMB,
which controller), which the benchmark plots against the capacity. With ``--memory``,
bench.memprobe samples where the process's memory is (RSS, the Python heap, glibc malloc's
figures) into that file (the soaks); ``--no-release`` turns off the release of free memory
after the encoder restarts and of an exam's garbage after its viewer left
(:mod:`appliance.allocator`) and ``--keep-thp`` leaves the process its transparent huge pages,
to measure the box without those fixes. ``--ice-servers`` gives its peers TURN servers (the
benchmark's ``turn-tcp``); ``--no-sound`` runs it without its synthetic sound (bench.sound's
baseline). Nothing else differs from the demo.

    python -m bench.netbox --media 127.0.0.2 --decisions out.jsonl -- run --demo --port 0 ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import IO, Any


def instrument(path: str) -> None:
    """Log every rate decision of :class:`appliance.stream.viewers.Viewers` to ``path``."""
    from appliance.stream.viewers import Viewers

    out: IO[str] = open(path, "a", buffering=1)  # noqa: SIM115 - for the process's life
    control_once = Viewers.control_once

    def logged(self: Viewers) -> None:
        control_once(self)
        d = self.decision
        if d is None:
            return
        peer = self.peers[0] if self.peers else None
        fb = peer.feedback if peer is not None else None
        line: dict[str, Any] = {
            "t": time.time(),
            "target": d.target_bps,
            "encoder": d.encoder_bps,
            "sent": d.sent_bps,
            "step": d.step.name,
            "stalled": d.stalled,
            "rtt": d.rtt,
            "remb": d.remb_bps,
            "loss_limit": d.loss_limit_bps,
            "delay_limit": d.delay_limit_bps,
            "nacked": fb.nacked if fb else 0,
            "rtx": fb.rtx_packets if fb else 0,
            "mode": fb.mode.value if fb else "",
            "rtx_refused": fb.rtx_refused if fb else 0,
            **_keyframes(self),
        }
        out.write(json.dumps(line) + "\n")

    Viewers.control_once = logged  # type: ignore[method-assign]


def _keyframes(viewers: Any) -> dict[str, Any]:
    """The pipeline's IDRs so far and the keyframe requests by reason (what a freeze waited for)."""
    pipeline = getattr(getattr(viewers, "_media", None), "pipeline", None)
    if pipeline is None:
        return {}
    asked = {r.name.lower(): n for r, n in pipeline.keyframes.asked.items() if n}
    return {"idr": pipeline.keyframes_encoded, "asked": asked}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.netbox")
    parser.add_argument("--media", default="127.0.0.2")
    parser.add_argument("--decisions", default="")
    parser.add_argument("--ice-servers", default="[]", help="stream.ice_servers, as JSON")
    parser.add_argument("--memory", default="", help="bench.memprobe's samples (JSON lines)")
    parser.add_argument("--memory-every", type=float, default=10.0)
    parser.add_argument("--tracemalloc", type=int, default=0, help="frames per trace (0: off)")
    parser.add_argument("--memory-baseline", type=float, default=0.0)
    parser.add_argument("--no-release", action="store_true", help="no malloc_trim, no collection")
    parser.add_argument("--keep-thp", action="store_true", help="transparent huge pages kept")
    parser.add_argument("--no-sound", action="store_true", help="audio.source = off")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    from appliance import demo

    if args.memory:
        from bench import memprobe

        memprobe.start(args.memory, args.memory_every, args.tracemalloc, args.memory_baseline)

    demo.DEMO_OVERRIDES["stream"] = {
        "ice_addresses": [args.media],
        "ice_servers": json.loads(args.ice_servers),
    }
    if args.no_sound:
        demo.DEMO_OVERRIDES["audio"] = {"source": "off"}
    from appliance import allocator

    if args.no_release:
        allocator.release_free_memory = lambda: False
        allocator.release_session_memory = lambda: 0
    if args.keep_thp:
        allocator.disable_transparent_huge_pages = lambda: False
    if args.decisions:
        instrument(args.decisions)
    from appliance.__main__ import main as appliance_main

    rest = [a for a in args.rest if a != "--"]
    return int(appliance_main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
