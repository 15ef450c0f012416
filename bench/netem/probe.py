"""A UDP probe stream on loopback: the measuring stick for every impairment of the rig.

The sender is bound to the box's media address (127.0.0.2, so the rig's filters match it) and
sends at a fixed bit rate; the receiver listens on 127.0.0.1. Each datagram carries a sequence
number and the sender's clock (CLOCK_MONOTONIC, ns, one clock for the whole machine); the
receiver, a thread blocked in recv, stamps it as it returns. (The kernel's own receive stamp is
no use here: loopback takes it before the input hook, where the rig's delay line holds packets.)
On an idle loopback the probe itself measures about 0.01 ms.

    python -m bench.netem.probe --rate 4 --seconds 3

prints the result as JSON. Nothing here leaves loopback: both ends are 127.x addresses.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import threading
import time
from dataclasses import asdict, dataclass, field

BOX = "127.0.0.2"  # the box's media address: the direction box -> phone
PHONE = "127.0.0.1"
HEADER = struct.Struct("!IQ")  # sequence number, send time (ns, CLOCK_MONOTONIC)
IP_UDP_OVERHEAD = 28  # what the link carries per datagram on top of the payload (IPv4 + UDP)


@dataclass
class ProbeResult:
    """What the receiver saw of one probe stream."""

    rate_mbit: float  # asked for
    seconds: float
    size: int  # UDP payload bytes per datagram
    sent: int = 0
    received: int = 0
    reordered: int = 0  # arrived after a higher sequence number
    duplicates: int = 0
    throughput_mbit: float = 0.0  # IP bytes delivered, first to last arrival
    loss: float = 0.0  # fraction of sent datagrams never received
    delay_p50_ms: float = 0.0
    delay_p95_ms: float = 0.0
    delay_max_ms: float = 0.0
    jitter_ms: float = 0.0  # RFC 3550 interarrival jitter
    #: (arrival s since the first send, sequence, one-way delay ms) per datagram, in arrival order
    arrivals: list[tuple[float, int, float]] = field(default_factory=list, repr=False)
    #: time.monotonic() of the first send: arrivals' 0 (to place the rig's changes on them)
    started: float = field(default=0.0, repr=False)

    def series(self, bin_s: float = 1.0) -> list[float]:
        """Delivered Mbit/s (IP bytes) in consecutive bins of ``bin_s`` from the first send."""
        bits = (self.size + IP_UDP_OVERHEAD) * 8
        count = int(max((a[0] for a in self.arrivals), default=0.0) // bin_s) + 1
        bins = [0.0] * count
        for at, _, _ in self.arrivals:
            bins[int(at // bin_s)] += bits / bin_s / 1e6
        return bins

    def summary(self) -> dict[str, float | int]:
        """The numbers without the per-datagram arrivals."""
        return {k: v for k, v in asdict(self).items() if k not in ("arrivals", "started")}


class _Receiver(threading.Thread):
    def __init__(self, sock: socket.socket, size: int) -> None:
        super().__init__(name="probe-receiver", daemon=True)
        self.sock = sock
        self.size = size
        self.stop_at: float | None = None  # monotonic; set once the sender is done
        self.quiet_s = 0.5  # after the sender is done: stop after this long without a datagram
        self.rows: list[tuple[int, int, int]] = []  # (seq, sent ns, arrived ns)

    def run(self) -> None:
        last = time.monotonic()
        while True:
            now = time.monotonic()
            if self.stop_at is not None and (now >= self.stop_at or now - last > self.quiet_s):
                return
            try:
                data = self.sock.recv(self.size + 64)
            except TimeoutError:
                continue
            arrived = time.monotonic_ns()
            last = arrived / 1e9
            if len(data) >= HEADER.size:
                seq, sent_ns = HEADER.unpack_from(data)
                self.rows.append((seq, sent_ns, arrived))


def run_probe(
    rate_mbit: float,
    seconds: float,
    *,
    size: int = 1200,
    src: str = BOX,
    dst: str = PHONE,
    sport: int = 0,
    drain_s: float = 2.0,
) -> ProbeResult:
    """Send ``rate_mbit`` (IP bytes) for ``seconds`` from ``src`` to ``dst`` and measure it.

    After the last datagram the receiver waits until 0.5 s pass without one (queues drain), at
    most ``drain_s``. ``sport``: the sender's port (0: any). Bounded: returns after
    ``seconds + drain_s`` at the latest.
    """
    if not 0 < rate_mbit <= 200 or not 0 < seconds <= 600 or not HEADER.size <= size <= 60000:
        raise ValueError("rate, duration or size out of range")
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        rx.bind((dst, 0))
        rx.settimeout(0.05)
        tx.bind((src, sport))
        receiver = _Receiver(rx, size)
        receiver.start()
        result = ProbeResult(rate_mbit=rate_mbit, seconds=seconds, size=size)
        t0_ns = time.monotonic_ns()
        result.started = t0_ns / 1e9
        result.sent = _send(tx, rx.getsockname(), rate_mbit, seconds, size)
        receiver.stop_at = time.monotonic() + drain_s
        receiver.join(drain_s + 1.0)
    finally:
        tx.close()
    rx.close()
    _analyse(result, receiver.rows, t0_ns)
    return result


def _send(
    tx: socket.socket, to: tuple[str, int], rate_mbit: float, seconds: float, size: int
) -> int:
    interval = (size + IP_UDP_OVERHEAD) * 8 / (rate_mbit * 1e6)
    padding = bytes(size - HEADER.size)
    start = time.monotonic()
    seq = 0
    while True:
        due = start + seq * interval
        if due - start >= seconds:
            return seq
        ahead = due - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        try:
            tx.sendto(HEADER.pack(seq, time.monotonic_ns()) + padding, to)
        except OSError:
            pass  # a full socket buffer counts as loss, like a real sender's
        seq += 1


def _analyse(result: ProbeResult, rows: list[tuple[int, int, int]], t0_ns: int) -> None:
    seen: set[int] = set()
    highest = -1
    delays: list[float] = []
    jitter = 0.0
    previous_transit: int | None = None
    for seq, sent_ns, arrived_ns in rows:
        if seq in seen:
            result.duplicates += 1
            continue
        seen.add(seq)
        if seq < highest:
            result.reordered += 1
        highest = max(highest, seq)
        transit = arrived_ns - sent_ns
        delays.append(transit / 1e6)
        if previous_transit is not None:
            jitter += (abs(transit - previous_transit) / 1e6 - jitter) / 16
        previous_transit = transit
        result.arrivals.append(((arrived_ns - t0_ns) / 1e9, seq, transit / 1e6))
    result.received = len(seen)
    result.loss = 1 - result.received / result.sent if result.sent else 0.0
    result.jitter_ms = jitter
    if delays:
        ordered = sorted(delays)
        result.delay_p50_ms = statistics.median(ordered)
        result.delay_p95_ms = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        result.delay_max_ms = ordered[-1]
    if len(result.arrivals) >= 2:
        span = result.arrivals[-1][0] - result.arrivals[0][0]
        bits = (result.received - 1) * (result.size + IP_UDP_OVERHEAD) * 8
        result.throughput_mbit = bits / span / 1e6 if span > 0 else 0.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=4.0, help="Mbit/s (IP bytes)")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=1200, help="UDP payload bytes")
    parser.add_argument("--src", default=BOX)
    parser.add_argument("--dst", default=PHONE)
    args = parser.parse_args(argv)
    result = run_probe(args.rate, args.seconds, size=args.size, src=args.src, dst=args.dst)
    print(json.dumps(result.summary(), indent=2))


if __name__ == "__main__":
    main()
