"""The impairment rig: capacity, loss, blackout and delay for one UDP source on loopback, and
a capacity for one TCP flow (``cap_tcp``: the box's TURN-over-TCP upload).

Used inside a network namespace that has only ``lo`` (the test suite's, or ``unshare -n``), as
root; it refuses to touch anything else. The box's media is sent from its own loopback address
(127.0.0.2), so the direction box -> phone can be told apart from everything else on ``lo``:

* cap:      an HTB class on ``lo`` (egress), a u32 filter for UDP from the source, and under it a
            drop-tail bfifo of ``queue_ms`` at the cap (the bottleneck of RFC 8868); cap_tcp the
            same for TCP to or from one port;
* loss:     nftables, input hook: ``numgen random`` drops that share of the source's UDP;
* blackout: nftables, input hook: every UDP datagram from the source is dropped until restore();
* delay:    iptables NFQUEUE on the input hook and ``delayq.py`` holding each packet late.

A packet from the source meets them in that order: bottleneck queue, loss and blackout, delay.
Drops are on the input hook because a drop on output makes sendto() fail with EPERM, which no
real network does. Everything stops by itself: the context manager's exit clears it, and so does
a timer after ``max_seconds``; the delay program stops on its own at the same deadline.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from .probe import BOX
from .profile import Profile
from .tools import NotIsolated, RigError, check_isolated, tool
from .tools import run as _run

__all__ = ["NotIsolated", "RigError", "check_isolated", "tool"]

TABLE = "netrig"  # nftables table (family ip) holding the loss and blackout chains
CHAIN = "NETRIG"  # iptables chain (filter table) holding the NFQUEUE rule
_NFT_TABLE = f"""table ip {TABLE} {{
  counter delivered_udp {{ }}
  counter delivered_tcp {{ }}
  chain blackout {{ }}
  chain loss {{ }}
  chain mss {{ type filter hook output priority mangle; policy accept; }}
  chain tcpcount {{ }}
  chain input {{
    type filter hook input priority filter - 10; policy accept;
    meta l4proto tcp jump tcpcount
    {{match}} jump blackout
    {{match}} jump loss
    {{match}} counter name delivered_udp
  }}
}}
"""

#: RFC 8867 section 5.1 (variable available capacity, one flow): (t seconds, x reference).
RFC8867_STEPS: tuple[tuple[float, float], ...] = ((0.0, 1.0), (40.0, 2.5), (60.0, 0.6), (80.0, 1.0))
RFC8867_DURATION_S = 100.0
RFC8867_REFERENCE_MBIT = 1.0
#: (HTB class, its bfifo's handle, the filter's priority) of the UDP cap and of the TCP cap.
_UDP_CLASS = ("1:1", "10:", "1")
_TCP_CLASS = ("1:2", "20:", "2")
#: The MSS a capped TCP flow is clamped to: an Ethernet path's (1500-byte MTU).
TCP_MSS = 1460


class Impairment:
    """Impairs UDP from ``src`` on ``lo``; a context manager that clears everything on exit.

    >>> with Impairment() as net:          # inside unshare -n, as root
    ...     net.cap(2.0)                   # 2 Mbit/s, 300 ms drop-tail queue
    ...     net.loss(5)                    # and 5 % random loss
    ...     net.delay(40, jitter_ms=5)     # and 40 +- 5 ms one way
    """

    def __init__(
        self,
        src: str = BOX,
        *,
        sport: int = 0,
        dev: str = "lo",
        queue_num: int = 7,
        max_seconds: float = 600.0,
    ) -> None:
        """``sport``: impair only the source's UDP from that port (a browser sending from
        127.0.0.1 among others: the libwebrtc reference line); 0: all of the source's UDP."""
        socket.inet_aton(src)  # an IPv4 address, nothing else reaches a command line
        if dev != "lo":
            raise RigError("the rig only impairs loopback")
        if not 0 <= int(sport) <= 65535:
            raise ValueError("sport is a port")
        self.src = src
        self.sport = int(sport)
        self.dev = dev
        self.queue_num = int(queue_num)
        self.max_seconds = max_seconds
        self.deadline = 0.0
        self.capacity_mbit: float | None = None
        self.tcp_capacity_mbit: float | None = None
        self.tcp_flow: tuple[str, int] | None = None  # ("dport" or "sport", port)
        self._htb_root = False
        self._gso_segs: int | None = None  # lo's own, while a TCP cap has set it to 1
        self.loss_percent = 0.0
        self.blacked_out = False
        self.delay_ms: tuple[float, float] | None = None
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._delayq: subprocess.Popen[str] | None = None
        self._profile: Profile | None = None
        self._entered = False

    # --- lifetime ---------------------------------------------------------------------------
    def __enter__(self) -> Impairment:
        check_isolated()
        self._clear_all()  # a previous run's leftovers, if any
        match = f"ip saddr {self.src} " + (
            f"udp sport {self.sport}" if self.sport else "meta l4proto udp"
        )
        _run("nft", "-f", "-", stdin=_NFT_TABLE.replace("{match}", match))
        self.deadline = time.monotonic() + self.max_seconds
        self._timer = threading.Timer(self.max_seconds, self.clear)
        self._timer.daemon = True
        self._timer.start()
        self._entered = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.clear()

    def _need(self) -> None:
        if not self._entered:
            raise RigError("use the Impairment as a context manager (with Impairment() as net)")
        if time.monotonic() >= self.deadline:
            raise RigError("the rig's max_seconds are over; it has cleared itself")

    def clear(self) -> None:
        """Remove every impairment: the qdiscs on lo, the nft table, the NFQUEUE rule."""
        profile, self._profile = self._profile, None
        if profile is not None:
            profile.stop()  # outside the lock: its thread may be waiting for it
        with self._lock:
            self._clear_all()
            self._entered = False

    def _clear_all(self) -> None:
        self._stop_delayq()
        _run("tc", "qdisc", "del", "dev", self.dev, "root", check=False)
        _run("nft", "delete", "table", "ip", TABLE, check=False)
        _run("iptables", "-w", "-D", "INPUT", "-j", CHAIN, check=False)
        _run("iptables", "-w", "-F", CHAIN, check=False)
        _run("iptables", "-w", "-X", CHAIN, check=False)
        self._restore_gso()
        self._htb_root = False
        self.capacity_mbit = None
        self.tcp_capacity_mbit = None
        self.tcp_flow = None
        self.loss_percent = 0.0
        self.blacked_out = False
        self.delay_ms = None

    # --- capacity ---------------------------------------------------------------------------
    def cap(self, mbit: float, queue_ms: float = 300.0) -> None:
        """Limit the source's UDP to ``mbit`` with a drop-tail queue of ``queue_ms`` at that rate.

        Called again, it changes the class and the queue in place (a capacity step), so what is
        queued stays queued.
        """
        udp = ["match", "ip", "src", f"{self.src}/32", "match", "ip", "protocol", "17", "0xff"]
        if self.sport:
            udp += ["match", "ip", "sport", str(self.sport), "0xffff"]
        with self._lock:
            self._need()
            self._shape(_UDP_CLASS, mbit, queue_ms, udp, self.capacity_mbit is None)
            self.capacity_mbit = mbit

    def cap_tcp(
        self, mbit: float, queue_ms: float = 300.0, *, dport: int = 0, sport: int = 0
    ) -> None:
        """Limit TCP to (``dport``) or from (``sport``) one port, any loopback address, to
        ``mbit`` with a drop-tail queue of ``queue_ms`` at that rate: the box's upload to a TURN
        server over TCP is ``dport=<its port>``. The flow's MSS is clamped to TCP_MSS on its
        SYNs (a real link's segments, not loopback's 64 KiB). Called again it changes the rate
        and the queue in place, for the same flow. While it is on, ``lo`` hands the qdisc one
        segment per packet (``gso_max_segs 1``): a 64 KiB GSO packet could never fit the queue.
        What the flow delivers is counted (:meth:`delivered`)."""
        port, field_ = (int(dport), "dport") if dport else (int(sport), "sport")
        if bool(dport) == bool(sport) or not 1 <= port <= 65535:
            raise ValueError("pick the flow by one port, dport or sport (1..65535)")
        tcp = ["match", "ip", "protocol", "6", "0xff", "match", "ip", field_, str(port), "0xffff"]
        with self._lock:
            self._need()
            if self.tcp_capacity_mbit is not None and self.tcp_flow != (field_, port):
                raise RigError(f"one TCP flow at a time: {self.tcp_flow} is capped already")
            if self.tcp_capacity_mbit is None:
                self._tcp_flow_on(field_, port)
            self._shape(_TCP_CLASS, mbit, queue_ms, tcp, self.tcp_capacity_mbit is None)
            self.tcp_capacity_mbit = mbit
            self.tcp_flow = (field_, port)

    def share_tcp(self, dport: int) -> None:
        """Send TCP to ``dport`` (a competing download towards the phone's side) through the
        UDP bottleneck of :meth:`cap`: the same HTB class and the same drop-tail queue, as a
        household's other traffic shares its router's. Call :meth:`cap` first. MSS and GSO as
        for :meth:`cap_tcp`; what the flow delivers is counted (:meth:`delivered`)."""
        if not 1 <= int(dport) <= 65535:
            raise ValueError("dport is a port")
        port = int(dport)
        tcp = ["match", "ip", "protocol", "6", "0xff", "match", "ip", "dport", str(port), "0xffff"]
        with self._lock:
            self._need()
            if self.capacity_mbit is None:
                raise RigError("share_tcp needs the bottleneck: cap() first")
            if self.tcp_flow is not None:
                raise RigError(f"one TCP flow at a time: {self.tcp_flow} is on already")
            self._tcp_flow_on("dport", port)
            _run(
                "tc", "filter", "add", "dev", self.dev, "parent", "1:", "protocol", "ip",
                "prio", _TCP_CLASS[2], "u32", *tcp, "flowid", _UDP_CLASS[0],
            )  # fmt: skip
            self.tcp_flow = ("dport", port)

    def _tcp_flow_on(self, field_: str, port: int) -> None:
        clamp = f"tcp flags & (syn | rst) == syn tcp option maxseg size set {TCP_MSS}"
        for side in ("dport", "sport"):
            _run("nft", f"add rule ip {TABLE} mss tcp {side} {port} {clamp}")
        _run("nft", f"add rule ip {TABLE} tcpcount tcp {field_} {port} counter name delivered_tcp")
        if self._gso_segs is None:
            link = json.loads(_run("ip", "-j", "-d", "link", "show", self.dev))[0]
            self._gso_segs = int(link.get("gso_max_segs", 65535))
            _run("ip", "link", "set", self.dev, "gso_max_segs", "1")

    def delivered(self) -> dict[str, int]:
        """IP bytes delivered past every impairment so far: ``udp`` from the source (its port),
        ``tcp`` of the flow of :meth:`cap_tcp` or :meth:`share_tcp`."""
        out = {"udp": 0, "tcp": 0}
        listing = json.loads(_run("nft", "-j", "list", "counters", "table", "ip", TABLE))
        for item in listing.get("nftables", []):
            counter = item.get("counter")
            if counter and counter.get("name") in ("delivered_udp", "delivered_tcp"):
                out[counter["name"].split("_")[1]] = int(counter.get("bytes", 0))
        return out

    def _shape(
        self, which: tuple[str, str, str], mbit: float, queue_ms: float, match: list[str], new: bool
    ) -> None:
        """Add (``new``) or change an HTB class with its bfifo, for packets that ``match``."""
        if not 0.01 <= mbit <= 10_000 or not 1 <= queue_ms <= 10_000:
            raise ValueError("capacity or queue out of range")
        classid, handle, prio = which
        rate_bytes = mbit * 1e6 / 8
        burst = str(max(3200, int(rate_bytes * 0.005)))  # a few packets: no long bursts
        limit = str(max(3200, int(rate_bytes * queue_ms / 1000)))
        rate = f"{mbit * 1000:.0f}kbit"
        htb = ["htb", "rate", rate, "ceil", rate, "burst", burst, "cburst", burst]
        dev = ("dev", self.dev)
        verb = "add" if new else "change"
        if new and not self._htb_root:
            _run("tc", "qdisc", "add", *dev, "root", "handle", "1:", "htb")
            self._htb_root = True
        _run("tc", "class", verb, *dev, "parent", "1:", "classid", classid, *htb)
        _run(
            "tc", "qdisc", verb, *dev, "parent", classid, "handle", handle, "bfifo", "limit", limit
        )
        if new:
            _run(
                "tc", "filter", "add", *dev, "parent", "1:", "protocol", "ip", "prio", prio,
                "u32", *match, "flowid", classid,
            )  # fmt: skip

    def uncap(self) -> None:
        """Remove the capacity limits (UDP and TCP, and their queues) only."""
        with self._lock:
            _run("tc", "qdisc", "del", "dev", self.dev, "root", check=False)
            _run("nft", "flush", "chain", "ip", TABLE, "mss", check=False)
            _run("nft", "flush", "chain", "ip", TABLE, "tcpcount", check=False)
            self._restore_gso()
            self._htb_root = False
            self.capacity_mbit = None
            self.tcp_capacity_mbit = None
            self.tcp_flow = None

    def _restore_gso(self) -> None:
        segs, self._gso_segs = self._gso_segs, None
        if segs is not None:
            _run("ip", "link", "set", self.dev, "gso_max_segs", str(segs), check=False)

    def queue_stats(self, tcp: bool = False) -> dict[str, int]:
        """The bottleneck queue's counters (the UDP one; ``tcp``: the TCP flow's): bytes and
        packets sent, drops, backlog bytes."""
        handle = (_TCP_CLASS if tcp else _UDP_CLASS)[1]
        for q in json.loads(_run("tc", "-s", "-j", "qdisc", "show", "dev", self.dev) or "[]"):
            if q.get("kind") == "bfifo" and q.get("handle") == handle:
                return {
                    "sent_bytes": int(q.get("bytes", 0)),
                    "sent_packets": int(q.get("packets", 0)),
                    "dropped": int(q.get("drops", 0)),
                    "backlog_bytes": int(q.get("backlog", 0)),
                }
        return {}

    def profile(
        self,
        steps: Sequence[tuple[float, float]],
        *,
        duration_s: float,
        queue_ms: float = 300.0,
        time_scale: float = 1.0,
    ) -> Profile:
        """Start capacity steps ``[(t seconds, Mbit/s), ...]``; returns the running Profile.

        ``time_scale`` compresses time (0.1: a 100 s profile in 10 s). The profile stops by
        itself after ``duration_s``, leaving the last capacity in place until clear().
        See :func:`rfc8867_steps` for RFC 8867's variable-capacity test.
        """
        if not steps or not 0 < duration_s * time_scale <= self.max_seconds:
            raise ValueError("no steps, or a duration beyond the rig's max_seconds")
        with self._lock:
            self._need()
            if self._profile is not None:
                self._profile.stop()
            self._profile = Profile(self, steps, duration_s, queue_ms, time_scale)
            self._profile.start()
            return self._profile

    # --- loss and blackout ------------------------------------------------------------------
    def loss(self, percent: float) -> None:
        """Drop ``percent`` % of the source's UDP at random (0.01 % steps); 0 removes it."""
        if not 0 <= percent <= 100:
            raise ValueError("loss is a percentage")
        with self._lock:
            self._need()
            _run("nft", "flush", "chain", "ip", TABLE, "loss")
            if percent > 0:
                threshold = str(round(percent * 100))
                _run(
                    "nft", "add", "rule", "ip", TABLE, "loss",
                    "numgen", "random", "mod", "10000", "<", threshold, "drop",
                )  # fmt: skip
            self.loss_percent = percent

    def blackout(self) -> None:
        """Drop every UDP datagram from the source until restore()."""
        with self._lock:
            self._need()
            _run("nft", "flush", "chain", "ip", TABLE, "blackout")
            _run("nft", "add", "rule", "ip", TABLE, "blackout", "drop")
            self.blacked_out = True

    def restore(self) -> None:
        """End a blackout."""
        with self._lock:
            self._need()
            _run("nft", "flush", "chain", "ip", TABLE, "blackout")
            self.blacked_out = False

    # --- delay ------------------------------------------------------------------------------
    def delay(self, ms: float, jitter_ms: float = 0.0) -> None:
        """Hold each of the source's UDP packets ``ms +- U(jitter_ms)`` (order kept per flow).

        ``delay(0)`` removes it. A change restarts the delay program: packets it holds are
        released at once and, for the moment between, pass undelayed.
        """
        if not 0 <= ms <= 10_000 or not 0 <= jitter_ms <= 10_000:
            raise ValueError("delay and jitter within 0..10000 ms")
        with self._lock:
            self._need()
            self._stop_delayq()
            if ms == 0 and jitter_ms == 0:
                _run("iptables", "-w", "-F", CHAIN, check=False)
                self.delay_ms = None
                return
            self._start_delayq(ms, jitter_ms)
            if self.delay_ms is None:
                _run("iptables", "-w", "-N", CHAIN, check=False)
                _run("iptables", "-w", "-F", CHAIN)
                _run(
                    "iptables", "-w", "-A", CHAIN, "-p", "udp", "-s", f"{self.src}/32",
                    *(("--sport", str(self.sport)) if self.sport else ()),
                    "-j", "NFQUEUE", "--queue-num", str(self.queue_num), "--queue-bypass",
                )  # fmt: skip
                _run("iptables", "-w", "-D", "INPUT", "-j", CHAIN, check=False)
                _run("iptables", "-w", "-I", "INPUT", "1", "-j", CHAIN)
            self.delay_ms = (ms, jitter_ms)

    def _start_delayq(self, ms: float, jitter_ms: float) -> None:
        seconds = max(1.0, self.deadline - time.monotonic())
        self._delayq = subprocess.Popen(
            [
                sys.executable, str(Path(__file__).with_name("delayq.py")),
                "--queue", str(self.queue_num), "--delay-ms", str(ms),
                "--jitter-ms", str(jitter_ms), "--seconds", f"{seconds:.1f}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self._delayq.stdout is not None
        readable, _, _ = select.select([self._delayq.stdout], [], [], 10)
        if not readable or self._delayq.stdout.readline().strip() != "ready":
            self._stop_delayq()
            raise RigError("the delay program did not start (is NetfilterQueue installed?)")

    def _stop_delayq(self) -> None:
        proc, self._delayq = self._delayq, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def rfc8867_steps(reference_mbit: float = RFC8867_REFERENCE_MBIT) -> list[tuple[float, float]]:
    """RFC 8867 section 5.1's capacity steps at ``reference_mbit``; run over RFC8867_DURATION_S."""
    return [(t, factor * reference_mbit) for t, factor in RFC8867_STEPS]
