"""The network benchmark's figures (bench/netscenarios.py) and the reference line's SDP handling
(bench/netref.py), on made-up records: what `make bench-network` reports must be what happened
at the bottleneck."""

from __future__ import annotations

import pytest

from bench.netref import candidate_port, keep_local_udp
from bench.netscenarios import SCENARIOS, bottleneck_figures, frame_figures, verdict


def _rows(
    seconds: float, udp_bps: float, tcp_bps: float = 0.0, backlog: int = 0
) -> list[dict[str, float]]:
    return [
        {
            "t": i * 0.2,
            "backlog": backlog,
            "udp": udp_bps * i * 0.2 / 8,
            "tcp": tcp_bps * i * 0.2 / 8,
        }
        for i in range(int(seconds / 0.2) + 1)
    ]


def test_utilisation_and_delay_come_from_the_bottleneck_in_steady_state() -> None:
    s = SCENARIOS["cap1"]  # 1 Mbit/s
    rows = _rows(40, 0.9e6, backlog=6250)  # 6250 bytes queued at 1 Mbit/s: 50 ms
    figures = bottleneck_figures(rows, s, "udp")
    assert figures["delivered_utilisation"] == pytest.approx(0.9, abs=0.01)
    assert figures["owd_excess_p95_ms"] == pytest.approx(50)
    assert "share" not in figures


def test_a_capacity_step_restarts_the_steady_state() -> None:
    s = SCENARIOS["rfc8867"]  # 2.5 Mbit/s from 40 s, 0.6 from 60 s
    rows: list[dict[str, float]] = []
    for i in range(501):
        t = i * 0.2
        sent = 2.5e6 if 40 <= t < 45 else 0.5e6  # an overshoot in the 5 s after a step
        prev = rows[-1]["udp"] if rows else 0.0
        rows.append({"t": t, "backlog": 0, "udp": prev + sent * 0.2 / 8, "tcp": 0})
    figures = bottleneck_figures(rows, s, "udp")
    # 0.5 Mbit/s steady over 1.0 (5..40, 80..100), 2.5 (45..60) and 0.6 (65..80) Mbit/s
    used = 0.5 * (35 + 15 + 15 + 15)
    capacity = 1.0 * 35 + 2.5 * 15 + 0.6 * 15 + 1.0 * 15
    assert figures["delivered_utilisation"] == pytest.approx(used / capacity, abs=0.01)
    assert figures["base_delay_ms"] == 50 and figures["owd_p95_ms"] == 50


def test_with_a_download_each_flow_has_its_share_and_the_verdict_judges_the_box() -> None:
    s = SCENARIOS["tcp"]  # 2 Mbit/s shared
    figures = bottleneck_figures(_rows(40, 0.5e6, tcp_bps=1.5e6), s, "udp")
    assert figures["share"] == pytest.approx(0.25, abs=0.01)
    assert figures["tcp_share"] == pytest.approx(0.75, abs=0.01)
    assert figures["delivered_utilisation"] == pytest.approx(1.0, abs=0.01)
    smooth = {"fps_converged": 20.0, "freezes_over_1s_converged": 0}
    assert verdict("tcp", {**smooth, **figures}) == "MISS"  # starved: under 30 %
    fair = bottleneck_figures(_rows(40, 0.8e6, tcp_bps=1.2e6), s, "udp")
    assert verdict("tcp", {**smooth, **fair}) == "PASS"


def test_freezes_count_gaps_between_presented_frames() -> None:
    s = SCENARIOS["cap1"]
    t0 = 1000.0
    shown = [t0 + i / 15 for i in range(15 * 40)]
    shown = [t for t in shown if not 20.0 < t - t0 < 21.2]  # 1.2 s without a frame at 20 s
    frames = [{"shown": t * 1000, "latency": 40.0} for t in shown]
    figures = frame_figures(frames, s, t0)
    assert figures["freezes_over_1s_converged"] == 1
    assert figures["longest_freeze_converged_s"] == pytest.approx(1.2, abs=0.07)
    assert figures["latency_p50_ms"] == 40.0


OFFER = "\r\n".join(
    [
        "v=0",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=candidate:1 1 udp 2122260223 127.0.0.1 50123 typ host generation 0",
        "a=candidate:2 1 udp 2122262783 ::1 50124 typ host generation 0",
        "a=candidate:3 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0",
        "a=rtcp-fb:96 transport-cc",
        "",
    ]
)


def test_the_reference_keeps_only_its_udp_candidate_on_127_0_0_1_and_finds_its_port() -> None:
    kept = keep_local_udp(OFFER)
    assert "::1" not in kept and " tcp " not in kept and "transport-cc" in kept
    assert candidate_port(kept) == 50123
    with pytest.raises(RuntimeError):
        candidate_port("v=0\r\n")
