"""Two refinements found on the impaired links: a queue probe's short dip does not move the ladder,
and steady random loss that the probe shows is not a queue stops pinning the rate."""

from __future__ import annotations

from appliance.stream.ladder import LADDER_1080P30
from appliance.stream.ratecontrol import RateController, RateParams, ReceiverReport


def _run(
    loss: float, seconds: float, params: RateParams | None = None
) -> tuple[RateController, set[str], float]:
    ctl = RateController(params or RateParams(), LADDER_1080P30, now=0.0)
    steps: set[str] = set()
    t = 0.0
    while t < seconds:
        t += 0.1
        ctl.on_bytes_sent(int(ctl.target_bps / 8 / 10), t)  # the encoder follows the target
        if abs(t - round(t)) < 1e-6:
            ctl.on_receiver_report(ReceiverReport(t, loss, rtt=0.08))
        steps.add(ctl.update(t).step.name)
    return ctl, steps, t


def test_a_queue_probe_does_not_step_the_picture_down() -> None:
    # at 2 Mbit/s the probe's 0.85 x would be under the 1.8 Mbit/s half-rate threshold
    ctl, steps, _ = _run(0.03, 12.0, RateParams(start_bps=2_000_000, max_bps=2_000_000))
    assert steps == {"full"}, steps


def test_steady_random_loss_lets_the_rate_grow_after_the_probe() -> None:
    ctl, _, _ = _run(0.03, 40.0)
    # 3 % is between GCC's thresholds (hold); once the probe shows no queue, it is background
    assert ctl.target_bps >= 3_500_000, ctl.decision


def test_real_congestion_still_cuts_the_rate() -> None:
    ctl, _, _ = _run(0.2, 10.0)
    assert ctl.target_bps < 1_500_000
