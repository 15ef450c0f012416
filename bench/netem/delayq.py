"""The rig's delay line: holds each packet that netfilter queues to it and releases it late.

    python -m bench.netem.delayq --queue 7 --delay-ms 40 --jitter-ms 10 --seconds 120

An iptables rule (``-j NFQUEUE --queue-num 7 --queue-bypass`` on the input hook, made by
:class:`bench.netem.Impairment`) hands the packets to this process through libnetfilter_queue
(the NetfilterQueue package). Each packet is due ``delay +- U(jitter)`` after it was queued, but
never before an earlier packet of the same flow (addresses, protocol and ports), so jitter does
not reorder a flow, as on a real path. One thread, one ``select`` loop: the socket is read when
readable, and due packets are accepted (re-injected where they were taken) when their time
comes.

It stops by itself after ``--seconds`` or on SIGTERM/SIGINT, releasing what it holds; once it
is gone the rule's ``--queue-bypass`` lets packets through undelayed. Prints ``ready`` on stdout
once bound, so a caller can wait for it.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import select
import signal
import time
from typing import Any

COPY_BYTES = 64  # enough of each packet for the IPv4 and transport headers


def flow_key(header: bytes) -> bytes:
    """Addresses, protocol and ports of an IPv4 packet (its first bytes); the bytes if not."""
    if len(header) < 20 or header[0] >> 4 != 4:
        return header[:20]
    ihl = (header[0] & 0x0F) * 4
    protocol = header[9]
    ports = header[ihl : ihl + 4] if protocol in (6, 17) else b""
    return header[12:20] + bytes([protocol]) + ports


class DelayLine:
    """Packets held with their due times, released in due order, FIFO within a flow."""

    def __init__(self, delay_s: float, jitter_s: float, rng: random.Random | None = None) -> None:
        if delay_s < 0 or jitter_s < 0:
            raise ValueError("delay and jitter must not be negative")
        self.delay_s = delay_s
        self.jitter_s = jitter_s
        self.rng = rng or random.Random()  # noqa: S311 - timing noise, not a secret
        self._heap: list[tuple[float, int, Any]] = []
        self._count = itertools.count()
        self._last_due: dict[bytes, float] = {}
        self.released = 0

    def hold(self, packet: Any, flow: bytes, now: float) -> float:
        """Queue ``packet``; returns its due time (monotonic seconds)."""
        due = now + self.delay_s
        if self.jitter_s:
            due += self.rng.uniform(-self.jitter_s, self.jitter_s)
        due = max(due, now, self._last_due.get(flow, 0.0))
        self._last_due[flow] = due
        if len(self._last_due) > 4096:  # forget flows with nothing held
            self._last_due = {k: v for k, v in self._last_due.items() if v > now}
        heapq.heappush(self._heap, (due, next(self._count), packet))
        return due

    def due(self, now: float) -> list[Any]:
        """The packets whose time has come, in order."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        self.released += len(out)
        return out

    def drain(self) -> list[Any]:
        """Everything still held, in order (when stopping)."""
        return self.due(float("inf"))

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


def serve(queue_num: int, delay_s: float, jitter_s: float, seconds: float) -> int:
    """Run the delay line on netfilter queue ``queue_num`` for at most ``seconds``."""
    from netfilterqueue import COPY_PACKET, NetfilterQueue, Packet

    line = DelayLine(delay_s, jitter_s)
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    def on_packet(packet: Packet) -> None:
        now = time.monotonic()
        line.hold(packet, flow_key(packet.get_payload()), now)
        for ready in line.due(now):
            ready.accept()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    nfq = NetfilterQueue()
    nfq.bind(queue_num, on_packet, max_len=20000, mode=COPY_PACKET, range=COPY_BYTES)
    fd = nfq.get_fd()
    end = time.monotonic() + seconds
    print("ready", flush=True)
    try:
        while not stopping:
            now = time.monotonic()
            if now >= end:
                break
            for packet in line.due(now):
                packet.accept()
            nxt = line.next_due()
            timeout = min(end - now, 0.2 if nxt is None else max(0.0, nxt - now))
            try:
                readable, _, _ = select.select([fd], [], [], timeout)
            except InterruptedError:
                continue
            if readable:
                nfq.run(block=False)
    finally:
        for packet in line.drain():
            packet.accept()
        nfq.unbind()
    return line.released


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", type=int, required=True, help="netfilter queue number")
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, required=True, help="stop after this long")
    args = parser.parse_args(argv)
    if not 0 <= args.delay_ms <= 10_000 or not 0 <= args.jitter_ms <= 10_000:
        parser.error("delay and jitter must be within 0..10000 ms")
    serve(args.queue, args.delay_ms / 1e3, args.jitter_ms / 1e3, args.seconds)


if __name__ == "__main__":
    main()
