"""One viewer's feedback loop without a network: RTT from our own sender reports, reports that show
nothing arrived, reports merged to one a second, the retransmission budget, and the pacer."""

from __future__ import annotations

import pytest

from appliance.config import StreamConfig
from appliance.stream.compat import ReportBlock
from appliance.stream.feedback import LinkSettings, Pacer, SenderFeedback
from appliance.stream.ladder import LADDER_720P30, LADDER_1080P30
from appliance.stream.ratecontrol import RateParams


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def block(highest: int, lost: int = 0, fraction: int = 0, lsr: int = 0, dlsr: int = 0):
    return ReportBlock(fraction, lost, highest, 90, lsr, dlsr)


def test_rtt_comes_from_the_sender_report_the_receiver_answers() -> None:
    clock = Clock()
    fb = SenderFeedback(RateParams(), clock=clock)
    fb.on_sr_sent(0x1234)
    clock.now += 0.5
    fb.on_sr_sent(0x5678)
    clock.now += 0.3
    # answers the first SR, held 0.25 s at the receiver: 0.8 - 0.25 s
    fb.on_sent(1200)
    fb.on_report(block(10, lsr=0x1234, dlsr=int(0.25 * 65536)))
    assert fb.rtt == pytest.approx(0.55, abs=1e-3)
    assert fb.controller.decision.rtt == pytest.approx(0.55, abs=1e-3)
    # an unknown LSR (or none) gives no RTT rather than a wrong one
    clock.now += 1.0
    fb.on_sent(1200)
    fb.on_report(block(20, lsr=0x9999, dlsr=1))
    assert fb.controller.decision.rtt is None


def test_a_report_showing_nothing_arrived_does_not_count_so_the_path_stalls() -> None:
    clock = Clock()
    fb = SenderFeedback(RateParams(), clock=clock)
    fb.on_sent(1200)
    fb.on_report(block(10))
    for _ in range(4):  # the browser keeps reporting, but the highest sequence stays
        clock.now += 1.0
        fb.on_sent(1200)
        fb.on_report(block(10))
        fb.update()
    assert fb.silent_reports == 4 and fb.update().stalled
    clock.now += 1.0
    fb.on_report(block(50))  # packets again
    assert not fb.update().stalled


def test_nothing_sent_and_nothing_received_is_not_a_dead_path() -> None:
    clock = Clock()
    fb = SenderFeedback(RateParams(), clock=clock)
    fb.on_sent(1200)
    fb.on_report(block(10))
    for _ in range(5):  # the box sends nothing (not live): the reports still count
        clock.now += 1.0
        fb.on_report(block(10))
    assert fb.silent_reports == 0 and not fb.update().stalled


def test_reports_closer_than_a_second_are_merged_with_the_loss_over_the_interval() -> None:
    clock = Clock()
    fb = SenderFeedback(RateParams(), clock=clock)
    fb.on_sent(1200)
    fb.on_report(block(100, lost=0))
    for i in range(1, 4):  # a compound RR with each NACK: 3 within 0.6 s
        clock.now += 0.2
        fb.on_sent(1200)
        fb.on_report(block(100 + 10 * i, lost=5 * i, fraction=128))
    assert fb.reports == 1
    clock.now += 0.3
    fb.on_sent(1200)
    fb.on_report(block(200, lost=20, fraction=0))
    assert fb.reports == 2
    # 20 lost of 100 expected since the last report passed on: 20 %, above the GCC threshold
    assert fb.controller.decision.loss_limit_bps < RateParams().start_bps


def test_retransmissions_are_budgeted_to_a_quarter_of_the_target() -> None:
    clock = Clock()
    fb = SenderFeedback(RateParams(start_bps=800_000), clock=clock)
    clock.now += 1.0  # the bucket fills: 0.25 x 800 kbit/s for half a second = 12.5 kB
    allowed = sum(fb.allow_rtx(1200) for _ in range(100))
    assert 8 <= allowed <= 11 and fb.rtx_refused == 100 - allowed
    clock.now += 0.1
    assert fb.allow_rtx(1200)  # refilled at 25 kB/s


def test_pacer_spreads_a_burst_and_never_holds_a_packet_long() -> None:
    clock = Clock()
    pacer = Pacer(2_000_000, factor=2.5, burst_s=0.004, min_burst=2500, clock=clock)
    delays = [pacer.delay(1200) for _ in range(20)]  # one 24 kB frame at once
    assert delays[0] == 0 and delays[1] == 0  # the burst allowance
    assert all(0 < d <= 0.010 for d in delays[3:])
    assert delays == sorted(delays), "each packet waits a little longer"
    clock.now += 1.0  # the bucket refills to its burst, not beyond
    assert pacer.delay(1200) == 0 and pacer.delay(1200) == 0 and pacer.delay(1200) > 0


def test_a_retransmission_from_before_the_last_keyframe_is_neither_sent_nor_refused() -> None:
    """At a capacity drop the viewer NACKs what the overflowing queue lost; once a keyframe has
    left, those packets are of no use to it (it decodes from the keyframe), and their refusal
    asked for another keyframe every half second while the first was still on its way."""
    clock = Clock()
    fb = SenderFeedback(RateParams(start_bps=500_000), clock=clock)
    for seq in range(100):  # P-frames, lost at the drop
        fb.on_sent(1200, seq=seq)
        clock.now += 0.002
    fb.on_sent(1200, seq=100, keyframe=True)
    for seq in range(101, 120):  # the keyframe's other packets
        fb.on_sent(1200, seq=seq)
    assert not any(fb.allow_rtx(1200, seq) for seq in range(100))
    assert fb.rtx_stale == 100 and fb.take_refused() == 0, "no keyframe asked for them"
    assert fb.allow_rtx(1200, 110), "the keyframe's own packets are retransmitted"
    assert not all(fb.allow_rtx(1200, 111) for _ in range(50)), "within the budget"
    assert fb.take_refused() > 0


def _leaves_over(pacer: Pacer, clock: Clock, nbytes: int) -> float:
    """How long a frame of ``nbytes`` takes to leave, its packets sent one after another (as
    aiortc's sender does: each waits for the one before)."""
    start = clock.now
    for _ in range(nbytes // 1200):
        clock.now += pacer.delay(1200)
    return clock.now - start


def test_at_a_low_rate_a_keyframe_leaves_slowly_enough_for_a_short_queue() -> None:
    """At 0.48 Mbit/s (RFC 8867's 0.6 Mbit/s link after the estimator's cut) a 24 kB keyframe
    into a 300 ms queue (22.5 kB at 0.6 Mbit/s): at 8 x it arrived in 45 ms, the link drained
    3.4 kB of it meanwhile and the queue had to hold 20.6 kB, with the frames and sound already
    in it more than it could; paced at 2.5 x it leaves over 140 ms and the queue holds at
    most 13.3 kB of it."""
    clock = Clock()
    took = _leaves_over(Pacer(480_000, clock=clock), clock, 24_000)
    assert took >= 0.14
    assert 24_000 - 0.6e6 / 8 * took <= 13_500, "little room left in the queue"
    clock.now += 1.0
    old = _leaves_over(Pacer(480_000, factor=8.0, low_factor=8.0, clock=clock), clock, 24_000)
    assert 24_000 - 0.6e6 / 8 * old >= 20_000, "the old pacing, for comparison"
    # on a fast link, and at the start rate, frames still leave at 8 x (a clean link's latency)
    for rate in (4_000_000, 2_500_000):
        clock.now += 1.0
        took = _leaves_over(Pacer(rate, clock=clock), clock, 24_000)
        assert took <= 24_000 * 8 / (8 * rate) + 0.002


def test_link_settings_from_config() -> None:
    link = LinkSettings.from_config(StreamConfig(), 4_000_000, (1920, 1080, 30.0))
    assert link.rate is not None and link.rate.max_bps == 4_000_000
    assert link.rate.min_bps == 300_000 and link.rate.start_bps == 2_500_000
    assert link.ladder == LADDER_1080P30 and link.pacing and link.rtx_history_s == 2.0
    low = LinkSettings.from_config(StreamConfig(), 1_000_000, (1280, 720, 30.0))
    assert low.rate is not None and low.rate.start_bps == 1_000_000
    assert low.ladder == LADDER_720P30
    off = LinkSettings.from_config(StreamConfig(rate_control=False), 4_000_000, (640, 480, 30))
    assert off.rate is None


def test_merged_reports_keep_the_path_alive() -> None:
    clock = Clock()
    fb = SenderFeedback(RateParams(), clock=clock)
    fb.on_sent(1200)
    fb.on_report(block(10))
    for i in range(1, 40):  # a report every 0.3 s, most of them merged
        clock.now += 0.3
        fb.on_sent(1200)
        fb.on_report(block(10 + i))
        assert not fb.update().stalled
    clock.now += 3.1  # then nothing: a stall 3 s after the last report heard, merged or not
    assert fb.update().stalled


def test_playout_delay_asks_for_a_retransmissions_worth_of_buffer_only_while_losing() -> None:
    clock = Clock()
    fb = SenderFeedback(RateParams(), clock=clock)
    fb.on_sr_sent(0x10)
    clock.now += 0.1
    fb.on_sent(1200)
    fb.on_report(block(10, lsr=0x10, dlsr=0))  # RTT 100 ms
    fb.update()
    assert fb.playout_delay == b"\x00\x00\x00", "a clean link: render at once"
    fb.on_nack([1, 2])
    fb.update()
    low, high = (
        int.from_bytes(fb.playout_delay, "big") >> 12,
        int.from_bytes(fb.playout_delay, "big") & 0xFFF,
    )
    assert (low, high) == (12, 62)  # 100 ms + 20 ms, in 10 ms units; max 500 ms more
    clock.now += 6.0  # no NACK for longer than NACK_MEMORY_S
    fb.update()
    assert fb.playout_delay == b"\x00\x00\x00"


def test_with_the_sound_on_the_browser_may_hold_the_picture_back_to_meet_it() -> None:
    """Lip sync: a maximum playout delay of 0 forbids the browser's A/V sync to delay the
    picture; while the co-parent has the sound on, the maximum is SOUND_SYNC_MS (the minimum
    stays 0: nothing waits that need not)."""
    fb = SenderFeedback(RateParams(), clock=Clock())
    fb.update()
    assert fb.playout_delay == b"\x00\x00\x00"
    fb.sound_on = True
    fb.update()
    value = int.from_bytes(fb.playout_delay, "big")
    assert (value >> 12, value & 0xFFF) == (0, SenderFeedback.SOUND_SYNC_MS // 10)
    fb.sound_on = False
    fb.update()
    assert fb.playout_delay == b"\x00\x00\x00"


def _sending(fb: SenderFeedback, clock: Clock, packets: int, first_seq: int = 0) -> None:
    """``packets`` of 1200 bytes at 100 a second (about 1 Mbit/s)."""
    for seq in range(first_seq, first_seq + packets):
        fb.on_sent(1200, seq=seq & 0xFFFF)
        clock.now += 0.01


def _with_rtt(fb: SenderFeedback, clock: Clock, rtt: float = 0.05) -> None:
    fb.on_sr_sent(0x77)
    clock.now += rtt
    fb.on_report(block(1, lsr=0x77, dlsr=0))
    assert fb.rtt == pytest.approx(rtt)


def test_nacks_for_half_the_packets_cut_the_rate_at_once_and_the_report_does_not_cut_again() -> (
    None
):
    clock = Clock()
    fb = SenderFeedback(RateParams(start_bps=2_500_000), clock=clock)
    _with_rtt(fb, clock)
    _sending(fb, clock, 100)
    before = fb.update().target_bps
    # the window: the half second of packets up to the newest one a NACK names
    fb.on_nack(list(range(46, 56)))  # 10 of the 51 packets up to seq 55, 20 %: not yet
    assert fb.early_cuts == 0 and fb.controller.target_bps == before
    fb.on_nack(list(range(56, 86)))  # 40 of the 51 up to seq 85: by half at most
    cut = fb.controller.target_bps
    assert fb.early_cuts == 1
    assert cut == pytest.approx(0.5 * before, rel=0.01)
    # the next receiver report counts the same loss: it does not cut a second time
    clock.now += 0.5
    fb.on_sent(1200, seq=100)
    fb.on_report(block(100, lost=40, fraction=100))
    assert fb.update().target_bps >= cut


def test_scattered_repeated_or_old_nacks_do_not_cut() -> None:
    clock = Clock()
    fb = SenderFeedback(RateParams(start_bps=2_500_000), clock=clock)
    _with_rtt(fb, clock)
    _sending(fb, clock, 100)
    target = fb.update().target_bps
    for seq in range(10, 100, 50):  # 2 % random loss
        fb.on_nack([seq])
    for _ in range(10):  # the browser asks again for the same packet: it counts once
        fb.on_nack([60])
    assert fb.early_cuts == 0 and fb.controller.target_bps == target
    # after an outage the browser NACKs packets sent long ago: they are not today's loss
    clock.now += 5.0
    _sending(fb, clock, 60, first_seq=100)
    fb.on_nack(list(range(0, 100)))
    assert fb.early_cuts == 0 and fb.controller.target_bps == target


def test_while_the_loss_goes_on_each_round_trip_cuts_again_down_to_what_gets_through() -> None:
    clock = Clock()
    fb = SenderFeedback(RateParams(start_bps=2_500_000, min_bps=100_000), clock=clock)
    _with_rtt(fb, clock)
    seq = 0
    targets = [fb.update().target_bps]
    for _ in range(6):  # 0.6 s rounds, each losing 80 % of its packets
        _sending(fb, clock, 60, first_seq=seq)
        fb.on_nack([s for s in range(seq, seq + 60) if s % 5])
        seq += 60
        targets.append(fb.controller.target_bps)
    assert fb.early_cuts >= 3
    assert all(b <= a for a, b in zip(targets, targets[1:], strict=False))
    # 100 packets a second of 1200 bytes, a fifth of them through: about 190 kbit/s
    assert targets[-1] <= 0.2 * 960_000 * 1.2, targets
