"""The rig's features for the network benchmark's new lines (bench/network.py): a TCP download
that shares the box's bottleneck (``tcp``), impairing one UDP port of 127.0.0.1 (the libwebrtc
reference line, whose sender is a browser on the phone's address), and the delivered-bytes
counters the benchmark's utilisation and shares come from. Each is checked with the probes.

Root, inside the suite's loopback-only namespace (tests/run.sh); skipped elsewhere, never under
CI=true as root.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from bench.netem import Impairment, run_probe
from bench.netem.probe import IP_UDP_OVERHEAD
from bench.netem.tcpprobe import TcpProbe, TcpProbeResult
from tests.support.rig import UNTOUCHED_P95_MS, needs_rig, require_rig

pytestmark = [pytest.mark.slow, needs_rig]


@pytest.fixture
def net() -> Iterator[Impairment]:
    require_rig()
    with Impairment(max_seconds=60) as rig:
        yield rig


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_tcp_download_shares_the_udp_bottleneck_and_its_queue(net: Impairment) -> None:
    net.cap(2.0, queue_ms=300)
    probe = TcpProbe()
    net.share_tcp(probe.port)
    results: list[TcpProbeResult] = []
    flow = threading.Thread(target=lambda: results.append(probe.run(5.0, drain_s=2.0)))
    start = time.monotonic()
    flow.start()
    try:
        udp = run_probe(1.0, 3.0, drain_s=1.0)  # while the download runs
    finally:
        flow.join(15)
    elapsed = time.monotonic() - start
    (tcp,) = results
    assert tcp.goodput_mbit >= 0.3 and udp.received, (tcp.summary(), udp.summary())
    # the UDP probe waited in a queue the download filled: an idle loopback measures 0.01 ms
    assert udp.delay_p50_ms >= 50 or udp.loss >= 0.1, udp.summary()
    stats, delivered = net.queue_stats(), net.delivered()
    udp_bytes = udp.received * (udp.size + IP_UDP_OVERHEAD)
    assert delivered["udp"] == udp_bytes, (delivered, udp_bytes)
    assert delivered["tcp"] >= tcp.received * tcp.size  # payload and its headers
    # one queue carried both: its bytes are the two flows' (each packet counted with its
    # 14-byte link header), the download's ACKs took no part
    counted = delivered["udp"] + delivered["tcp"]
    assert counted <= stats["sent_bytes"] <= counted * 1.05, (stats, delivered)
    # and the two together never had more than the 2 Mbit/s
    assert stats["sent_bytes"] * 8 / elapsed <= 2.0e6 * 1.03, (stats, elapsed)


def test_another_tcp_port_is_not_in_the_shared_bottleneck(net: Impairment) -> None:
    net.cap(1.0, queue_ms=300)
    shared, other = TcpProbe(), TcpProbe()
    net.share_tcp(shared.port)
    fast = other.run(1.5)
    assert fast.goodput_mbit > 50, fast.summary()
    assert net.delivered()["tcp"] == 0 and net.queue_stats()["sent_bytes"] == 0


def test_sport_impairs_one_udp_port_of_an_address_only() -> None:
    require_rig()
    port = _free_udp_port()
    with Impairment(src="127.0.0.1", sport=port, max_seconds=60) as net:
        net.cap(1.0, queue_ms=100)
        net.delay(30)
        capped = run_probe(2.0, 2.0, src="127.0.0.1", sport=port)
        assert 0.85 <= capped.throughput_mbit <= 1.05, capped.summary()
        assert 30 <= capped.delay_p50_ms <= 160, capped.summary()
        other = run_probe(2.0, 1.0, src="127.0.0.1")  # another port of the same address
        assert (
            other.loss == 0 and other.delay_p50_ms < 5 and other.delay_p95_ms < UNTOUCHED_P95_MS
        ), other.summary()
        box = run_probe(2.0, 1.0)  # the box's address: not this rig's source
        assert box.loss == 0 and box.delay_p50_ms < 5 and box.delay_p95_ms < UNTOUCHED_P95_MS, (
            box.summary()
        )
        size = capped.size + IP_UDP_OVERHEAD
        assert net.delivered()["udp"] == capped.received * size
