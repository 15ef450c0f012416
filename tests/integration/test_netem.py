"""The network impairment rig (bench/netem), each impairment measured with the UDP probe.

These run as root inside the suite's loopback-only namespace (tests/run.sh); they are skipped
only when not root or outside such a namespace, and under CI=true as root they never skip.
Each impairment applies to UDP from the box's address (127.0.0.2) only; the TCP cap to one TCP
port only, measured with the TCP probe (a bulk sender).
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Iterator
from statistics import median, quantiles

import pytest

from bench.netem import Impairment, rfc8867_steps, run_probe
from bench.netem.delayq import DelayLine, flow_key
from bench.netem.probe import IP_UDP_OVERHEAD
from bench.netem.rig import TCP_MSS, tool
from bench.netem.tcpprobe import TcpProbe
from tests.support.rig import UNTOUCHED_P95_MS, needs_rig, require_rig


@pytest.fixture
def net() -> Iterator[Impairment]:
    require_rig()
    with Impairment(max_seconds=60) as rig:
        yield rig


def _show(*command: str) -> str:
    return subprocess.run([tool(command[0]), *command[1:]], capture_output=True, text=True).stdout


def _delays_between(result: object, start: float, end: float) -> list[float]:
    return [d for at, _, d in result.arrivals if start <= at < end]  # type: ignore[attr-defined]


@needs_rig
@pytest.mark.slow
def test_cap_delivers_the_capacity_and_the_queue_fills_to_its_size(net: Impairment) -> None:
    net.cap(2.0, queue_ms=300)
    r = run_probe(4.0, 3.0)
    assert 1.7 <= r.throughput_mbit <= 2.1, r.summary()
    assert 0.4 <= r.loss <= 0.6  # half of 4 Mbit/s does not fit: drop-tail
    early, late = _delays_between(r, 0, 0.05), _delays_between(r, 1.5, 3.0)
    assert early and median(early) < 60  # an empty queue first
    # then the 300 ms queue, full (a receiver's stamp can only be late: the top 2 % left out)
    assert 250 <= min(late) and quantiles(late, n=50)[-1] <= 330
    stats = net.queue_stats()
    assert stats["dropped"] > 0 and stats["sent_packets"] == r.received


@needs_rig
@pytest.mark.slow
def test_capacity_steps_follow_the_rfc8867_profile_live(net: Impairment) -> None:
    # RFC 8867 5.1 at 1 Mbit/s, 20 times faster: 1.0, 2.5, 0.6, 1.0 Mbit/s at 0, 2, 3, 4 s.
    profile = net.profile(rfc8867_steps(1.0), duration_s=100, queue_ms=100, time_scale=0.05)
    r = run_probe(4.0, 5.0)
    profile.wait(2)
    assert [mbit for _, mbit in profile.applied] == [1.0, 2.5, 0.6, 1.0]
    assert all(
        0 <= at - want < 0.3  # as done: each step's tc calls are slower on a busy machine
        for (at, _), want in zip(profile.applied, [0, 2, 3, 4], strict=True)
    )
    bins = r.series(0.5)  # Mbit/s per half second from the first send
    for (start, end), want in {(1, 4): 1.0, (5, 6): 2.5, (7, 8): 0.6, (9, 10): 1.0}.items():
        got = sum(bins[start:end]) / (end - start)
        assert abs(got - want) <= 0.15 * want, (start / 2, got, want, bins)


@needs_rig
@pytest.mark.slow
def test_loss_of_5_percent_measures_3_to_9(net: Impairment) -> None:
    net.loss(5)
    r = run_probe(4.0, 3.0)
    # 5% of ~1200 packets is 60 +- 8; a receiver starved of CPU by a busy machine (the suite
    # runs browsers beside it) loses a few more, never fewer
    assert 0.03 <= r.loss <= 0.09, r.summary()
    assert r.delay_p50_ms < 5 and r.delay_p95_ms < UNTOUCHED_P95_MS and r.reordered == 0


@needs_rig
@pytest.mark.slow
def test_blackout_delivers_nothing_then_the_stream_resumes(net: Impairment) -> None:
    marks: dict[str, float] = {}  # when the rule was in, when its removal began and ended

    def blackout() -> None:
        net.blackout()
        marks["dark"] = time.monotonic()

    def restore() -> None:
        marks["lit"] = time.monotonic()
        net.restore()
        marks["back"] = time.monotonic()

    threading.Timer(1.0, blackout).start()
    threading.Timer(2.0, restore).start()
    r = run_probe(4.0, 3.0)
    # placed on the probe's clock as they happened (nft is slower on a busy machine)
    dark, lit, back = (marks[k] - r.started for k in ("dark", "lit", "back"))
    assert 0.8 < lit - dark < 1.2, marks
    sent_in_the_dark = [at - ms / 1000 for at, _, ms in r.arrivals if dark <= at - ms / 1000 < lit]
    assert not sent_in_the_dark, (dark, lit, sent_in_the_dark[:5])
    rate = 4e6 / ((r.size + IP_UDP_OVERHEAD) * 8)  # datagrams per second
    assert len(_delays_between(r, 0, dark - 0.05)) > 0.85 * rate * (dark - 0.05)
    assert len(_delays_between(r, back + 0.05, 3.0)) > 0.85 * rate * (2.95 - back)
    assert (lit - dark) / 3 - 0.03 <= r.loss <= (back - dark) / 3 + 0.03, (r.loss, marks)
    assert not net.blacked_out


@needs_rig
@pytest.mark.slow
def test_delay_of_40_ms_one_way_keeps_the_order(net: Impairment) -> None:
    net.delay(40)
    r = run_probe(4.0, 2.0)
    assert 35 <= r.delay_p50_ms <= 60 and r.delay_p95_ms <= 90, r.summary()
    assert r.loss == 0 and r.reordered == 0
    net.delay(40, jitter_ms=15)  # jitter, still in order within the flow
    r = run_probe(4.0, 2.0)
    assert 35 <= r.delay_p50_ms <= 60 and r.reordered == 0 and r.loss == 0, r.summary()
    assert r.jitter_ms > 1 and r.delay_max_ms - min(d for _, _, d in r.arrivals) > 10


@needs_rig
@pytest.mark.slow
def test_only_udp_from_the_box_is_impaired_and_clear_removes_everything(net: Impairment) -> None:
    net.cap(1.0)
    net.loss(50)
    net.delay(100)
    net.blackout()
    other = run_probe(4.0, 1.0, src="127.0.0.1")
    assert (
        other.loss == 0
        and other.delay_p50_ms < 5
        and other.delay_p95_ms < UNTOUCHED_P95_MS
        and 3.8 <= other.throughput_mbit <= 4.2
    )
    net.clear()
    r = run_probe(4.0, 1.0)
    assert r.loss == 0 and r.delay_p50_ms < 5 and r.delay_p95_ms < UNTOUCHED_P95_MS, r.summary()
    assert "htb" not in _show("tc", "qdisc", "show", "dev", "lo")
    assert "netrig" not in _show("nft", "list", "tables")
    assert "NFQUEUE" not in _show("iptables", "-S")


@needs_rig
@pytest.mark.slow
def test_a_tcp_cap_on_one_port_delivers_the_capacity_and_fills_its_queue(net: Impairment) -> None:
    probe, other = TcpProbe(), TcpProbe()
    gso = _show("ip", "-d", "link", "show", "lo").split("gso_max_segs ")[1].split()[0]
    net.cap_tcp(1.5, queue_ms=300, dport=probe.port)
    backlog: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            backlog.append(net.queue_stats(tcp=True)["backlog_bytes"])

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        r = probe.run(3.0)
    finally:
        done.set()
        sampler.join()
    # payload: 1448 of every 1514 bytes HTB counts (MSS with timestamps, headers, link header)
    assert 1.3 <= r.goodput_mbit <= 1.5, r.summary()
    early = r.delays_between(0, 0.05)
    assert early and median(early) < 60  # an empty queue first
    limit = 1.5e6 / 8 * 0.3
    assert 0.8 * limit <= max(backlog) <= limit, (max(backlog), limit)  # full, never beyond
    assert r.delay_max_ms >= 250, r.summary()  # the 300 ms queue (and the sender's own)
    stats = net.queue_stats(tcp=True)
    assert stats["dropped"] > 0 and stats["sent_bytes"] / stats["sent_packets"] <= TCP_MSS + 66
    # another TCP port and the box's UDP go by untouched
    fast = other.run(1.5)  # goodput counts from 0.5 s
    assert fast.goodput_mbit > 50 and fast.delay_p95_ms < 50, fast.summary()
    udp = run_probe(4.0, 1.0)
    assert udp.loss == 0 and udp.delay_p50_ms < 5 and udp.delay_p95_ms < UNTOUCHED_P95_MS, (
        udp.summary()
    )
    net.clear()
    assert "htb" not in _show("tc", "qdisc", "show", "dev", "lo")
    assert f"gso_max_segs {gso} " in _show("ip", "-d", "link", "show", "lo")  # as it was


@needs_rig
@pytest.mark.slow
def test_the_rig_clears_itself_after_max_seconds() -> None:
    require_rig()
    with Impairment(max_seconds=1.0) as rig:
        rig.cap(0.5)
        rig.delay(200)
        time.sleep(1.5)
        r = run_probe(4.0, 0.5)
        assert r.loss == 0 and r.delay_p50_ms < 5 and r.delay_p95_ms < UNTOUCHED_P95_MS
        assert rig.capacity_mbit is None and rig.delay_ms is None


def test_the_delay_line_keeps_each_flow_in_order_and_releases_on_time() -> None:
    line = DelayLine(0.040, 0.015, random.Random(7))
    dues = [line.hold(("a", i), b"a", now=i * 0.001) for i in range(200)]
    dues += [line.hold(("b", i), b"b", now=i * 0.001) for i in range(200)]
    assert all(0.025 <= due - i * 0.001 for i, due in enumerate(dues[:200]))
    assert line.due(0.024) == []
    released = line.due(1.0)
    assert len(released) == 400 and len(line) == 0
    for flow in "ab":
        assert [i for f, i in released if f == flow] == list(range(200))
    assert line.drain() == []


def test_flow_key_is_addresses_protocol_and_ports() -> None:
    udp = bytes([0x45]) + bytes(8) + bytes([17]) + bytes(2) + bytes([127, 0, 0, 2, 127, 0, 0, 1])
    key = flow_key(udp + bytes([0x1F, 0x90, 0x00, 0x35]) + bytes(40))
    assert key == bytes([127, 0, 0, 2, 127, 0, 0, 1, 17, 0x1F, 0x90, 0x00, 0x35])
    assert flow_key(b"\x60" + bytes(60))[:1] == b"\x60"  # not IPv4: its bytes
