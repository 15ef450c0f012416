"""A TCP probe on loopback: a bulk sender and a receiver that measure a TCP cap of the rig.

The receiver listens on 127.0.0.1 (a port of its own, known before the run, so that the rig can
pick the flow by it: ``net.cap_tcp(..., dport=probe.port)``); the sender connects from the box's
address and writes fixed-size records as fast as TCP takes them, each carrying a sequence number
and the time it was handed to ``send`` (CLOCK_MONOTONIC). The receiver stamps each record as it
is read. So a record's delay is all the queueing on its way: the sender's socket buffer, the
bottleneck's queue, the receiver's. Meanwhile the sender's unsent and unacknowledged bytes
(SIOCOUTQ) are sampled every 50 ms.

    python -m bench.netem.tcpprobe --seconds 3

prints the result as JSON. Nothing here leaves loopback: both ends are 127.x addresses.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import socket
import statistics
import struct
import termios
import threading
import time
from dataclasses import asdict, dataclass, field

from .probe import BOX, HEADER, PHONE


@dataclass
class TcpProbeResult:
    """What the receiver saw of one bulk TCP stream, and the sender's queue."""

    seconds: float
    size: int  # bytes per record
    sent: int = 0  # records handed to send()
    received: int = 0
    goodput_mbit: float = 0.0  # payload delivered, from 0.5 s after the start to the last record
    delay_p50_ms: float = 0.0
    delay_p95_ms: float = 0.0
    delay_max_ms: float = 0.0
    outq_max_bytes: int = 0  # the sender's socket: most bytes unsent or unacknowledged
    outq_p50_bytes: int = 0
    #: (arrival s since the start, one-way delay ms) per record
    arrivals: list[tuple[float, float]] = field(default_factory=list, repr=False)

    def delays_between(self, start: float, end: float) -> list[float]:
        return [d for at, d in self.arrivals if start <= at < end]

    def summary(self) -> dict[str, float | int]:
        return {k: v for k, v in asdict(self).items() if k != "arrivals"}


class TcpProbe:
    """Listens at once (``port`` is known before :meth:`run`); one run, then closed."""

    def __init__(self, dst: str = PHONE, src: str = BOX, size: int = 1200) -> None:
        if not HEADER.size <= size <= 65536:
            raise ValueError("record size out of range")
        self.src = src
        self.size = size
        self._listener = socket.create_server((dst, 0))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self.port = int(self.address[1])

    def run(
        self, seconds: float, *, sndbuf: int = 0, drain_s: float = 3.0, send_timeout: float = 0.2
    ) -> TcpProbeResult:
        """Send for ``seconds`` (``sndbuf``: fix the sender's buffer, else the kernel's
        autotuning), then wait for what is queued, at most ``drain_s``. A send blocked for
        ``send_timeout`` ends the sending early (a long competing flow gives it seconds)."""
        if not 0 < seconds <= 600:
            raise ValueError("duration out of range")
        result = TcpProbeResult(seconds=seconds, size=self.size)
        rows: list[tuple[int, int, int]] = []  # (seq, sent ns, arrived ns)
        outq: list[int] = []
        tx = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if sndbuf:
                tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            tx.bind((self.src, 0))
            tx.connect(self.address)
            rx, _ = self._listener.accept()
            reader = threading.Thread(target=_read, args=(rx, self.size, rows), daemon=True)
            reader.start()
            done = threading.Event()
            sampler = threading.Thread(target=_sample, args=(tx, outq, done), daemon=True)
            sampler.start()
            t0 = time.monotonic_ns()
            result.sent = _send(tx, self.size, seconds, send_timeout)
            tx.shutdown(socket.SHUT_WR)
            reader.join(drain_s)
            done.set()
            sampler.join(1)
            rx.close()
        finally:
            tx.close()
            self._listener.close()
        _analyse(result, list(rows), t0, outq)
        return result


def _send(tx: socket.socket, size: int, seconds: float, timeout: float) -> int:
    padding = bytes(size - HEADER.size)
    tx.settimeout(timeout)
    end = time.monotonic() + seconds
    seq = 0
    while time.monotonic() < end:
        record = HEADER.pack(seq, time.monotonic_ns()) + padding
        try:
            tx.sendall(record)
        except TimeoutError:
            break  # part of a record may be out: stop rather than corrupt the stream
        seq += 1
    return seq


def _read(rx: socket.socket, size: int, rows: list[tuple[int, int, int]]) -> None:
    buffer = b""
    while True:
        try:
            data = rx.recv(1 << 16)
        except OSError:
            return
        if not data:
            return
        arrived = time.monotonic_ns()
        buffer += data
        whole = len(buffer) // size * size
        for offset in range(0, whole, size):
            seq, sent_ns = HEADER.unpack_from(buffer, offset)
            rows.append((seq, sent_ns, arrived))
        buffer = buffer[whole:]


def _sample(tx: socket.socket, into: list[int], done: threading.Event) -> None:
    holder = struct.pack("i", 0)
    while not done.wait(0.05):
        try:
            into.append(struct.unpack("i", fcntl.ioctl(tx.fileno(), termios.TIOCOUTQ, holder))[0])
        except OSError:
            return


def _analyse(
    result: TcpProbeResult, rows: list[tuple[int, int, int]], t0_ns: int, outq: list[int]
) -> None:
    result.received = len(rows)
    delays = [(arrived - sent) / 1e6 for _, sent, arrived in rows]
    result.arrivals = [((a - t0_ns) / 1e9, d) for (_, _, a), d in zip(rows, delays, strict=True)]
    if delays:
        ordered = sorted(delays)
        result.delay_p50_ms = statistics.median(ordered)
        result.delay_p95_ms = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        result.delay_max_ms = ordered[-1]
    steady = [at for at, _ in result.arrivals if at >= 0.5]
    if len(steady) >= 2 and steady[-1] > steady[0]:
        result.goodput_mbit = (len(steady) - 1) * result.size * 8 / (steady[-1] - steady[0]) / 1e6
    if outq:
        result.outq_max_bytes = max(outq)
        result.outq_p50_bytes = int(statistics.median(outq))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=1200, help="bytes per record")
    parser.add_argument("--sndbuf", type=int, default=0, help="the sender's SO_SNDBUF")
    args = parser.parse_args(argv)
    probe = TcpProbe(size=args.size)
    print(json.dumps(probe.run(args.seconds, sndbuf=args.sndbuf).summary(), indent=2))


if __name__ == "__main__":
    main()
