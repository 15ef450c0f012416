"""The rate controller and its ladder, closed-loop against a simulated link and on recorded traces.

Every scenario is checked twice: live, with the controller driving the link simulator (its
rate changes the queue, the loss and the RTT it then hears about), and on the recorded trace in
``tests/data/ratecontrol/`` (the same feedback replayed open-loop into a fresh controller).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from appliance.stream.ladder import (
    LADDER_720P30,
    LADDER_1080P30,
    Ladder,
    LadderParams,
    scaled_size,
)
from appliance.stream.ratecontrol import RateController, RateDecision, RateParams, ReceiverReport
from appliance.vocab import STALL_AFTER_S
from tests.support.ratecontrol_sim import SCENARIOS, M, Run, load, replay, simulate

MAX = 4 * M


def _below_cap_within(run: Run, cap: float, after: float, within: float) -> None:
    t = run.first(lambda k: k.target < cap, after=after)
    assert t is not None and t - after <= within, f"target still above {cap:.0f} at {t}"


def check_clean_4m(run: Run) -> None:
    t = run.first(lambda k: k.target >= 0.95 * MAX)
    assert t is not None and t <= 10, f"ramp to the maximum took until {t}"
    steady = run.window(t, run.scenario.duration)
    assert min(k.target for k in steady) >= 0.9 * MAX, "no spurious back-off on a clean link"
    assert not any(k.stalled for k in run.ticks)
    assert all(k.step == "full" for k in run.window(12, 40))


def _check_cap(run: Run, cap: float) -> None:
    _below_cap_within(run, cap, 0.0, 5.0)
    assert run.delivered_bps(20, 60) >= 0.7 * cap, "utilisation under 70 % in steady state"
    assert run.mean_target(20, 60) <= 1.1 * cap
    steady = run.window(20, 60)
    mean_queue = sum(k.queue_delay for k in steady) / len(steady)
    assert mean_queue < 0.15, f"a standing queue of {mean_queue * 1000:.0f} ms"


def check_cap_2m(run: Run) -> None:
    _check_cap(run, 2 * M)
    assert run.ticks[-1].step == "half-rate", "1080p below 1.8 Mbit/s: 15 fps"


def check_cap_1m(run: Run) -> None:
    _check_cap(run, 1 * M)
    assert run.ticks[-1].step == "smaller", "1080p below 0.9 Mbit/s: 720p15"


def check_step_4_1_4(run: Run) -> None:
    assert run.mean_target(10, 20) >= 0.9 * MAX
    _below_cap_within(run, 1 * M, 20.0, 5.0)
    assert run.delivered_bps(25, 40) >= 0.7 * M
    t = run.first(lambda k: k.target >= 3 * M, after=40)
    assert t is not None and t <= 70, f"back to 3 Mbit/s only at {t}"
    assert run.ticks[-1].step == "full" and run.mean_target(80, 100) >= 0.9 * MAX


def check_random_loss(run: Run) -> None:
    assert run.mean_target(20, 60) >= 0.8 * MAX, "2 % random loss must not collapse the rate"
    assert min(k.target for k in run.window(20, 60)) >= 0.6 * MAX


def check_blackout(run: Run) -> None:
    stall = run.first(lambda k: k.stalled)
    assert stall is not None and 20 < stall <= 23.5, f"stall noticed at {stall}"
    assert all(k.stalled for k in run.window(stall, 30))
    assert all(k.target <= MAX // 2 for k in run.window(stall + 0.1, 30)), "cut while stalled"
    back = run.first(lambda k: not k.stalled, after=stall)
    assert back is not None and back <= 32
    t = run.first(lambda k: k.target >= 0.9 * MAX, after=back)
    assert t is not None and t - back <= 10, f"ramped back only at {t}"


def check_remb_low(run: Run) -> None:
    remb = 1.2 * M
    assert all(k.target <= remb for k in run.window(2, 30)), "REMB is a ceiling"
    assert run.mean_target(5, 30) >= 0.95 * remb
    assert run.mean_target(45, 60) >= 0.9 * MAX, "no REMB any more: the link's rate again"
    t = run.first(lambda k: k.target > 1.2 * remb, after=30)
    assert t is not None and 32 <= t <= 40, "a stale REMB expires after 3 s"


def check_deep_queue(run: Run) -> None:
    _below_cap_within(run, 2 * M, 0.0, 8.0)
    steady = run.window(20, 60)
    assert sum(k.queue_delay for k in steady) / len(steady) < 0.2, "the delay limit drains it"
    assert run.delivered_bps(20, 60) >= 0.7 * 2 * M


CHECKS: dict[str, Callable[[Run], None]] = {
    "clean_4m": check_clean_4m,
    "cap_2m": check_cap_2m,
    "cap_1m": check_cap_1m,
    "step_4_1_4": check_step_4_1_4,
    "random_loss": check_random_loss,
    "blackout": check_blackout,
    "remb_low": check_remb_low,
    "deep_queue": check_deep_queue,
}


def test_every_scenario_has_a_check_and_a_trace() -> None:
    assert set(CHECKS) == set(SCENARIOS)
    for name in SCENARIOS:
        trace = load(name)
        assert trace["scenario"] == name and trace["feedback"] and trace["ticks"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_closed_loop(name: str) -> None:
    CHECKS[name](simulate(SCENARIOS[name]))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recorded_trace(name: str) -> None:
    CHECKS[name](replay(load(name)))


def test_simulation_is_deterministic() -> None:
    a, b = simulate(SCENARIOS["random_loss"]), simulate(SCENARIOS["random_loss"])
    assert a.feedback == b.feedback and [k.target for k in a.ticks] == [k.target for k in b.ticks]


class _Deaf:
    """A controller that ignores feedback and sends at a fixed rate (the box before this)."""

    def __init__(self) -> None:
        self._inner = RateController(RateParams(start_bps=MAX))

    def on_bytes_sent(self, nbytes: int, now: float) -> None:
        pass

    def on_remb(self, bitrate: int, now: float) -> None:
        pass

    def on_receiver_report(self, report: ReceiverReport) -> None:
        pass

    def update(self, now: float) -> RateDecision:
        return self._inner.update(now)


@pytest.mark.parametrize("name", ["cap_2m", "cap_1m", "step_4_1_4", "deep_queue", "remb_low"])
def test_the_checks_fail_a_controller_that_ignores_feedback(name: str) -> None:
    with pytest.raises(AssertionError):
        CHECKS[name](simulate(SCENARIOS[name], _Deaf()))


def test_the_checks_fail_a_controller_that_backs_off_on_any_loss() -> None:
    touchy = RateController(RateParams(loss_high=0.01, loss_low=0.005))
    with pytest.raises(AssertionError):
        check_random_loss(simulate(SCENARIOS["random_loss"], touchy))


def test_the_checks_fail_a_controller_without_the_delay_limit() -> None:
    blind = RateController(
        RateParams(start_bps=MAX, delay_threshold_s=100.0, probe_after_reports=10**6)
    )
    with pytest.raises(AssertionError):
        check_deep_queue(simulate(SCENARIOS["deep_queue"], blind))


# -- the controller's unit behaviour --------------------------------------------------------------


def test_starts_at_the_start_rate_and_clamps() -> None:
    c = RateController(RateParams(min_bps=500_000, start_bps=1_000_000, max_bps=2_000_000))
    d = c.update(0.0)
    assert d.target_bps == 1_000_000 and d.encoder_bps == 950_000 and not d.stalled
    c.on_remb(100_000, 0.5)
    assert c.update(0.5).target_bps == 500_000, "never below min_bps"
    with pytest.raises(ValueError):
        RateParams(min_bps=2_000_000, start_bps=1_000_000)


def test_loss_limit_follows_gcc() -> None:
    c = RateController(RateParams(start_bps=2 * M, max_bps=4 * M))
    for i in range(1, 4):
        c.on_bytes_sent(250_000, float(i))
        c.on_receiver_report(ReceiverReport(float(i), 0.05, rtt=0.05))
    assert c.decision.loss_limit_bps == 2 * M, "2-10 % loss holds"
    c.on_bytes_sent(250_000, 4.0)
    c.on_receiver_report(ReceiverReport(4.0, 0.20, rtt=0.05))
    assert c.decision.loss_limit_bps == int(2 * M * 0.9), "20 % loss: x (1 - 0.5 x 0.2)"


def test_stalls_without_reports_and_resumes() -> None:
    c = RateController(RateParams(start_bps=2 * M))
    c.on_bytes_sent(10_000, 0.5)
    assert not c.update(0.4 + STALL_AFTER_S).stalled, "the stall time from the first packet sent"
    assert c.update(0.5 + STALL_AFTER_S).stalled and c.target_bps == M
    assert c.update(5.0).target_bps == M, "cut once"
    c.on_receiver_report(ReceiverReport(5.0, 0.9, rtt=0.05))  # counts the blackout: ignored
    d = c.update(5.0)
    assert not d.stalled and d.target_bps == M


def test_nothing_sent_is_no_stall() -> None:
    assert not RateController().update(10.0).stalled


# -- the ladder -----------------------------------------------------------------------------------


def test_ladder_steps_down_at_once_and_up_with_hysteresis() -> None:
    ladder = Ladder(LADDER_1080P30)
    assert ladder.update(2_000_000, 0).name == "full"
    assert ladder.update(1_700_000, 1).name == "half-rate"
    assert ladder.update(800_000, 2).name == "smaller"
    assert ladder.step.fps == 15 and ladder.step.size(1920, 1080) == (1280, 720)
    assert ladder.update(1_000_000, 3).name == "smaller", "above the threshold is not enough"
    ladder.update(1_200_000, 4)  # 1.33 x 0.9 Mbit/s: the clock starts
    assert ladder.update(1_200_000, 8.9).name == "smaller"
    ladder.update(1_100_000, 9.0)  # a dip under 1.3 x restarts the clock
    ladder.update(1_200_000, 9.1)
    assert ladder.update(1_200_000, 13.0).name == "smaller"
    assert ladder.update(1_200_000, 14.1).name == "half-rate"
    assert ladder.update(3_000_000, 15).name == "half-rate"
    assert ladder.update(3_000_000, 19.2).name == "full"
    assert ladder.step.frame_divisor == 1


def test_ladder_defaults_and_sizes() -> None:
    assert (LADDER_1080P30.fps_below_bps, LADDER_1080P30.scale_below_bps) == (1_800_000, 900_000)
    assert (LADDER_720P30.fps_below_bps, LADDER_720P30.scale_below_bps) == (800_000, 400_000)
    assert LadderParams.for_picture(1920, 1080, 30).fps_below_bps == 1_866_240
    assert scaled_size(1280, 720, 2 / 3) == (852, 480)
    assert scaled_size(1920, 1080, 1.0) == (1920, 1080)
    with pytest.raises(ValueError):
        LadderParams(fps_below_bps=500_000, scale_below_bps=900_000)
