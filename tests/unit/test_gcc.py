"""The send-side estimator (GCC on transport-wide feedback): its parts on hand-made groups, then
the whole controller closed-loop against the link simulator (tests/support/twcc_sim.py: real
feedback messages, written and parsed, every 100 ms), on the rate-control scenarios and a few of
its own. Estimators without the delay detector or without probing are shown to fail."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from appliance.stream import twccrate
from appliance.stream.gcc import AimdRate, GroupDelta, InterArrival, Trendline, Usage
from appliance.stream.ladder import LADDER_720P30
from appliance.stream.rateparams import RateParams
from appliance.stream.twcc import (
    ArrivalClock,
    PacketResult,
    SendLog,
    SentPacket,
    packet_results,
    parse_feedback,
    split_compound,
)
from appliance.stream.twccrate import TwccController, _probe_rate
from tests.support.ratecontrol_sim import SCENARIOS, M, Run, Scenario
from tests.support.twcc_sim import simulate_twcc

MAX = 4 * M


def test_packets_sent_together_are_one_group_and_a_held_burst_joins_it() -> None:
    arrivals = InterArrival()
    assert arrivals.add(0.000, 10.000, 1200) is None
    assert arrivals.add(0.004, 10.004, 1200) is None  # within 5 ms of the group's first
    assert arrivals.add(0.033, 10.033, 1200) is None  # a new group: the first is complete
    delta = arrivals.add(0.066, 10.070, 1200)  # the third group starts: the second is done
    assert delta == GroupDelta(pytest.approx(0.029), pytest.approx(0.029), 10.033)  # type: ignore[arg-type]
    # held by the network, released at once: arrives within 5 ms, faster than it was sent
    assert arrivals.add(0.099, 10.072, 1200) is None
    assert arrivals.add(0.010, 10.073, 1200) is None  # reordered (sent before the group): ignored
    delta = arrivals.add(0.132, 10.140, 1200)
    assert delta is not None and delta.send_delta == pytest.approx(0.099 - 0.033)


class _Groups:
    """Groups sent 33 ms apart, one after another on one clock."""

    def __init__(self) -> None:
        self.trend = Trendline()
        self.arrival = 0.0

    def feed(self, groups: int, growth_ms: float) -> list[Usage]:
        """``groups`` groups, each arriving ``growth_ms`` later than it was sent after the last."""
        seen = []
        for _ in range(groups):
            self.arrival += 0.033 + growth_ms / 1000
            delta = GroupDelta(0.033, 0.033 + growth_ms / 1000, self.arrival)
            seen.append(self.trend.update(delta))
        return seen


def test_flat_delay_is_normal_a_growing_queue_overuses_a_draining_one_underuses() -> None:
    groups = _Groups()
    assert set(groups.feed(40, 0.0)) == {Usage.NORMAL}
    growing = groups.feed(20, 3.0)  # the queue grows 3 ms every frame: 9 % over the link
    assert Usage.OVERUSING in growing, growing
    assert growing.index(Usage.OVERUSING) <= 15, "seen within half a second"
    draining = groups.feed(30, -3.0)
    assert draining[-1] is Usage.UNDERUSING


def test_the_threshold_follows_a_steady_signal_up_slowly_and_down_fast() -> None:
    groups = _Groups()
    groups.feed(30, 0.0)
    quiet = groups.trend.detector.threshold
    assert quiet < 12.5, "a quiet link: it came down"
    # a steady, gentle rise (a competing flow's queue): the threshold rises to meet it
    groups.feed(150, 1.0)
    raised = groups.trend.detector.threshold
    assert raised > quiet + 0.5
    groups.feed(60, 0.0)
    assert groups.trend.detector.threshold < raised - 0.5, "and comes back down faster"


def test_aimd_cuts_to_0_85_of_what_got_through_and_grows_8_percent_a_second() -> None:
    aimd = AimdRate(2 * M, 0.3 * M, 4 * M)
    aimd.update(Usage.NORMAL, 2.5 * M, 0.0)
    aimd.update(Usage.NORMAL, 2.5 * M, 1.0)
    assert aimd.bps == pytest.approx(2 * M * 1.08, rel=0.01)
    aimd.update(Usage.OVERUSING, 1.0 * M, 1.1)
    assert aimd.bps == pytest.approx(0.85 * M)
    aimd.update(Usage.OVERUSING, 0.8 * M, 1.15)  # within an RTT: the same overuse
    assert aimd.bps == pytest.approx(0.85 * M)
    aimd.update(Usage.UNDERUSING, 0.8 * M, 1.5)
    assert aimd.bps == pytest.approx(0.85 * M), "hold while the queue drains"
    # near the capacity it found: about a packet per response time, not 8 %/s
    aimd.update(Usage.NORMAL, 0.85 * M, 2.0)
    aimd.update(Usage.NORMAL, 0.85 * M, 3.0)
    assert 0.85 * M < aimd.bps < 0.85 * M * 1.04
    # never far above what gets through
    for t in range(4, 30):
        aimd.update(Usage.NORMAL, 0.5 * M, float(t))
    assert aimd.bps <= 0.85 * M * 1.05


def test_an_overuse_far_below_the_capacity_it_knew_starts_the_average_again() -> None:
    """libwebrtc's rule: the link's capacity is the average of the rates overuse was seen at,
    unless the rate that got through is below its spread (a capacity drop, or a cut the
    receiver's jitter caused); then it starts again from there, and once the rate is back
    above it the increase is multiplicative (8 %/s) rather than a packet at a time."""
    aimd = AimdRate(2.5 * M, 0.1 * M, 4 * M)
    for i in range(10):  # a link of 2.5 Mbit/s, found again and again
        aimd.update(Usage.OVERUSING, 2.5 * M, float(i))
        aimd.update(Usage.NORMAL, 2.5 * M, i + 0.5)
    assert aimd.link.estimate == pytest.approx(2500, rel=0.01)
    aimd.update(Usage.OVERUSING, 0.6 * M, 20.0)  # the capacity dropped to 0.6
    assert aimd.bps == pytest.approx(0.85 * 0.6 * M)
    assert aimd.link.estimate == pytest.approx(600, rel=0.01), "not an average with 2.5"
    aimd.update(Usage.NORMAL, 0.6 * M, 20.5)
    # the rate that gets through goes past the new capacity's spread: search fast again
    for t in range(21, 26):
        aimd.update(Usage.NORMAL, 0.75 * M, float(t))
    assert aimd.bps >= 0.85 * 0.6 * M * 1.08**4, "still adding a packet at a time"


def test_losses_the_delay_cut_answered_do_not_cut_the_rate_again() -> None:
    """Packets lost to a queue that overflowed before the delay-based estimate's cut could act
    are that cut's business; the loss bound counts only the packets sent after it."""
    ctl = TwccController(RateParams(start_bps=2 * M, max_bps=4 * M), now=0.0)
    ctl._aimd.update(Usage.OVERUSING, 0.6 * M, 10.0)  # the delay detector's cut at 10 s

    def half_lost(first: int, sent_from: float) -> list[PacketResult]:
        return [
            PacketResult(SentPacket(first + i, 1200, sent_from + i * 0.005), None if i % 2 else 1.0)
            for i in range(40)
        ]

    ctl._count_loss(half_lost(0, 9.7), 10.2)  # half lost, all sent before the cut
    assert ctl.update(10.2).target_bps == pytest.approx(0.85 * 0.6 * M, rel=0.01)
    ctl._count_loss(half_lost(100, 10.1), 10.6)  # the loss goes on after the cut: it acts
    assert ctl.update(10.6).target_bps <= 0.8 * 0.85 * 0.6 * M


def _cluster(rate_bps: float, link_bps: float, n: int = 10) -> list[PacketResult]:
    results, arrival = [], 5.0
    for i in range(n):
        sent = i * 1200 * 8 / rate_bps
        arrival = max(arrival + 1200 * 8 / link_bps, 5.0 + sent)
        results.append(PacketResult(SentPacket(i, 1200, sent, 1), arrival))
    return results


def test_a_probe_is_worth_the_lower_of_its_send_and_receive_rates() -> None:
    assert _probe_rate(_cluster(2 * M, 10 * M)) == pytest.approx(2 * M, rel=0.01)
    assert _probe_rate(_cluster(4 * M, 1.5 * M)) == pytest.approx(1.5 * M, rel=0.01)
    few = _cluster(4 * M, 4 * M, n=4)
    assert _probe_rate(few) is None
    lossy = [*_cluster(4 * M, 4 * M, n=6), *[PacketResult(SentPacket(9, 1200, 0.1), None)] * 3]
    assert _probe_rate(lossy) is None


# -- closed loop ------------------------------------------------------------------------------


def _short(name: str, seconds: float) -> Scenario:
    return dataclasses.replace(SCENARIOS[name], duration=seconds)


def _queue(run: Run, start: float, end: float) -> float:
    window = run.window(start, end)
    return sum(k.queue_delay for k in window) / len(window)


def test_a_clean_link_reaches_the_maximum_in_seconds_and_stays() -> None:
    run = simulate_twcc(_short("clean_4m", 15))
    t = run.first(lambda k: k.target >= 0.95 * MAX)
    assert t is not None and t <= 3, f"the maximum only at {t}"
    assert min(k.target for k in run.window(t, 15)) >= 0.9 * MAX, "no spurious back-off"
    assert _queue(run, 5, 15) < 0.01
    assert all(k.step == "full" for k in run.window(5, 15))


@pytest.mark.parametrize(
    ("name", "cap", "step"), [("cap_2m", 2 * M, "half-rate"), ("cap_1m", M, "smaller")]
)
def test_under_a_cap_the_queue_is_kept_near_empty_and_the_link_used(
    name: str, cap: float, step: str
) -> None:
    run = simulate_twcc(_short(name, 30))  # from 4 Mbit/s into a 300 ms drop-tail queue
    below = run.first(lambda k: k.target < cap)
    assert below is not None and below <= 2.0, f"below the cap at {below}"
    assert run.delivered_bps(8, 30) >= 0.85 * cap, "utilisation under 85 %"
    assert _queue(run, 8, 30) < 0.06, "a standing queue"
    assert run.ticks[-1].step == step


def test_a_3_s_queue_turn_over_tcp_is_drained_and_kept_short() -> None:
    run = simulate_twcc(_short("deep_queue", 30))
    assert _queue(run, 10, 30) < 0.1
    assert run.delivered_bps(10, 30) >= 0.85 * 2 * M


STEP = Scenario(
    "twcc_step",
    "capacity 4.4 -> 1 -> 4.4 Mbit/s at 5 s and 20 s (300 ms queue at 1 Mbit/s)",
    36,
    ((0, 4.4 * M), (5, 1 * M), (20, 4.4 * M)),
)


def test_after_a_drop_it_falls_at_once_and_comes_back_in_seconds() -> None:
    run = simulate_twcc(STEP)
    below = run.first(lambda k: k.target < M, after=5)
    assert below is not None and below - 5 <= 1.0, f"below 1 Mbit/s at {below}"
    assert _queue(run, 7, 20) < 0.05, "the queue the drop filled is drained"
    back = run.first(lambda k: k.target >= 3 * M, after=20)
    assert back is not None and back - 20 <= 8, f"back to 3 Mbit/s at {back}"
    assert run.ticks[-1].step == "full"


def test_a_probe_sent_before_the_delay_rose_does_not_raise_the_estimate() -> None:
    """RFC 8867's drop in a bench run: a probe at 4 Mbit/s left just before it, was judged
    after the delay-based cut and set the estimate from 0.49 to 2.2 Mbit/s for a round."""
    ctl = TwccController(RateParams(start_bps=2 * M, max_bps=4 * M), now=0.0)
    ctl.on_feedback([PacketResult(SentPacket(0, 1200, 0.0), 1.0)], 0.05)
    ctl.update(2.0)
    probe = ctl.take_probe()
    assert probe is not None
    ctl._probes[probe.cluster][2].extend(_cluster(4 * M, 10 * M))  # it got through at 4
    ctl._last_overuse = 2.1  # then the queue grew (the capacity dropped)
    ctl._aimd.set_estimate(0.5 * M, 2.1)
    for i in range(50):  # and what gets through is 0.58 Mbit/s
        ctl._acked.add(1.5 + i * 0.01, 725)
    assert ctl.update(3.0).target_bps == pytest.approx(0.5 * M, rel=0.01)
    assert ctl.probes_raised == 0


RFC8867_DROP = Scenario(
    "rfc8867_drop",
    "RFC 8867 5.1's drop: 2.5 -> 0.6 Mbit/s at 20 s, 50 ms each way, 300 ms queues",
    40,
    ((0, 2.5 * M), (20, 0.6 * M)),
    base_rtt=0.1,
    queue_ref_bps=1 * M,
    params={"start_bps": 1 * M},
)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_at_rfc_8867s_drop_a_720p_picture_keeps_its_size(seed: int) -> None:
    """0.6 Mbit/s is above the 720p ladder's 0.4 for a smaller picture: the drop must not take
    the target below it (the loss the drop's overflowing queue caused cut it a second time,
    which shrank the picture: an IDR at the worst moment, and another on the way back)."""
    run = simulate_twcc(
        dataclasses.replace(RFC8867_DROP, seed=seed),
        TwccController(RFC8867_DROP.rate_params(), LADDER_720P30, 0.0),
    )
    below = run.first(lambda k: k.target <= 0.6 * M, after=20)
    assert below is not None and below - 20 <= 1.0, f"below the new capacity at {below}"
    low = min(k.target for k in run.window(20, 40))
    assert low >= LADDER_720P30.scale_below_bps, f"down to {low} bit/s"
    assert "smaller" not in {k.step for k in run.window(20, 40)}, "the picture shrank"
    assert run.delivered_bps(25, 40) >= 0.8 * 0.6 * M


def test_without_probing_the_rate_comes_back_slowly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(twccrate, "PROBE_AGAIN_S", 1e9)
    monkeypatch.setattr(twccrate, "PROBE_RETRY_S", 1e9)
    run = simulate_twcc(STEP)
    back = run.first(lambda k: k.target >= 3 * M, after=20)
    assert back is None or back - 20 > 8, "probing is what brings it back in seconds"


def test_without_the_delay_detector_the_queue_stands_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Trendline, "update", lambda self, delta: Usage.NORMAL)
    run = simulate_twcc(_short("cap_1m", 30))
    assert _queue(run, 8, 30) > 0.1, "only loss would bound it: the queue fills"


def test_random_loss_of_2_percent_keeps_the_rate() -> None:
    run = simulate_twcc(_short("random_loss", 20))
    assert run.mean_target(5, 20) >= 0.9 * MAX


def test_a_blackout_stalls_it_and_the_rate_is_back_at_once_after() -> None:
    blackout = dataclasses.replace(SCENARIOS["blackout"], duration=18, blackouts=((5, 10),))
    run = simulate_twcc(blackout)
    stall = run.first(lambda k: k.stalled)
    assert stall is not None and 5 < stall <= 8.5
    assert all(k.target <= MAX // 2 for k in run.window(stall + 0.1, 10))
    back = run.first(lambda k: not k.stalled, after=10)
    assert back is not None and back <= 11
    up = run.first(lambda k: k.target >= 0.95 * MAX, after=10)
    assert up is not None and up <= 14, f"back to the maximum at {up}"


def test_the_status_of_a_probe_is_given_once() -> None:
    ctl = TwccController(dataclasses.replace(SCENARIOS["clean_4m"].rate_params()), now=0.0)
    ctl.on_feedback([PacketResult(SentPacket(0, 1200, 0.0), 1.0)], 0.05)
    ctl.update(2.0)
    probe = ctl.take_probe()
    assert probe is not None and probe.rate_bps == MAX and probe.extra_bps > 0
    assert ctl.take_probe() is None


def test_only_packets_nobody_heard_of_stall_it_not_silence_while_sending_nothing() -> None:
    ctl = TwccController(RateParams(), now=0.0)
    ctl.on_bytes_sent(1200, 0.5)
    ctl.on_feedback([PacketResult(SentPacket(0, 1200, 0.5), 100.0)], 0.6)
    assert not ctl.update(10.0).stalled, "paused or between states: nothing sent, nothing heard"
    ctl.on_bytes_sent(1200, 10.1)
    assert not ctl.update(11.5).stalled
    decision = ctl.update(12.2)
    assert decision.stalled and decision.target_bps <= 0.51 * RateParams().start_bps
    # the first feedback after it re-arms the detector; the one after that counts
    ctl.on_feedback([PacketResult(SentPacket(1, 1200, 10.1), 110.0)], 12.3)
    assert not ctl.update(12.4).stalled


TRACES = Path(__file__).resolve().parents[1] / "data" / "twcc"


def test_a_recorded_chromium_trace_through_a_1_mbit_cap_brings_the_target_below_it() -> None:
    """Open loop: what the box sent and Chromium's feedback, recorded by
    tests/browser/test_transport_cc.py through bench/netem's 1 Mbit/s cap (300 ms queue),
    replayed into a fresh estimator."""
    trace = json.loads((TRACES / "chromium-cap-1m.json").read_text())
    capped = trace["marks"]["capped"]
    log, clock = SendLog(max_age_s=10.0, start=trace["start_seq"]), ArrivalClock()
    ctl = TwccController(RateParams(), now=0.0)
    events: list[tuple[float, int, Any]] = sorted(
        [(t, 0, (size, probe)) for t, size, probe in trace["sent"]]
        + [(t, 1, bytes.fromhex(packet)) for t, packet in trace["feedback"]],
        key=lambda e: (e[0], e[1]),
    )
    targets: list[tuple[float, int]] = []
    usages = set()
    next_update = 0.1
    for t, kind, data in events:
        while next_update <= t:
            targets.append((next_update, ctl.update(next_update).target_bps))
            next_update = round(next_update + 0.1, 6)
        if kind == 0:
            size, probe = data
            log.add(size, t, probe)
            ctl.on_bytes_sent(size, t)
        else:
            payloads, _ = split_compound(data)
            for payload in payloads:
                ctl.on_feedback(packet_results(parse_feedback(payload), log, clock), t)
                usages.add(ctl.usage)
    before = [b for t, b in targets if t < capped]
    assert before and min(before) >= 2_000_000, "no back-off on the clean link first"
    below = next((t for t, b in targets if t > capped and b < 1_000_000), None)
    assert below is not None and below - capped <= 2.5, f"below the cap {below} s in"
    assert Usage.OVERUSING in usages, "the queue was seen growing"
    assert all(300_000 <= b <= 1_100_000 for t, b in targets if t > below)
