"""Measure each impairment of the rig with the probe and print a table (docs/reliability.md).

    unshare -n bash -c 'ip link set lo up && .venv/bin/python -m bench.netem'

Root, inside a loopback-only namespace; about 30 s. ``--json`` prints the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import threading

from .probe import ProbeResult, run_probe
from .rig import Impairment, rfc8867_steps


def measure() -> list[tuple[str, ProbeResult, str]]:
    """(impairment, the probe's result, a note) for each impairment, one after another."""
    rows: list[tuple[str, ProbeResult, str]] = []
    with Impairment(max_seconds=120) as net:
        rows.append(("none", run_probe(4.0, 2.0), ""))
        net.cap(2.0, queue_ms=300)
        rows.append(("cap 2 Mbit/s, 300 ms queue", run_probe(4.0, 3.0), f"{net.queue_stats()}"))
        net.clear()
    with Impairment(max_seconds=120) as net:
        profile = net.profile(rfc8867_steps(1.0), duration_s=100, queue_ms=100, time_scale=0.05)
        r = run_probe(4.0, 5.0)
        profile.wait(2)
        bins = " ".join(f"{b:.2f}" for b in r.series(0.5))
        rows.append(("RFC 8867 5.1 steps x0.05, 100 ms queue", r, f"Mbit/s per 0.5 s: {bins}"))
        net.clear()
    with Impairment(max_seconds=120) as net:
        net.loss(5)
        rows.append(("loss 5 %", run_probe(4.0, 3.0), ""))
        net.loss(0)
        threading.Timer(1.0, net.blackout).start()
        threading.Timer(2.0, net.restore).start()
        r = run_probe(4.0, 3.0)
        gap = [at for at, _, _ in r.arrivals if 1.05 <= at < 1.95]
        rows.append(("blackout 1..2 s of 3 s", r, f"arrivals within 1.05..1.95 s: {len(gap)}"))
        net.delay(40)
        rows.append(("delay 40 ms", run_probe(4.0, 2.0), ""))
        net.delay(40, jitter_ms=15)
        rows.append(("delay 40 +- 15 ms", run_probe(4.0, 2.0), ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure()
    if args.json:
        print(json.dumps([{"impairment": n, **r.summary(), "note": x} for n, r, x in rows]))
        return
    print("| impairment (probe 4 Mbit/s, 1200 B) | Mbit/s | loss | p50 ms | p95 ms | jitter ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r, _ in rows:
        print(
            f"| {name} | {r.throughput_mbit:.2f} | {r.loss * 100:.1f} % | {r.delay_p50_ms:.1f} "
            f"| {r.delay_p95_ms:.1f} | {r.jitter_ms:.2f} |"
        )
    for name, r, note in rows:
        if note or r.reordered:
            print(f"{name}: {note} reordered={r.reordered}")


if __name__ == "__main__":
    main()
