"""The delay-based half of Google Congestion Control (draft-ietf-rmcat-gcc-02), as libwebrtc does
it (``modules/congestion_controller/goog_cc``): pure, no I/O, times in seconds.

* :class:`InterArrival`: packets sent within 5 ms of a group's first are one group (a frame, a
  burst); between consecutive groups, the send and arrival time deltas. A group arriving within
  5 ms of the last one, sooner than it was sent after it, joins it (a burst the network held).
* :class:`Trendline`: the delay variation ``arrival delta - send delta`` accumulated and
  smoothed, its slope over the last 20 groups by least squares; the slope, scaled by the number
  of deltas (up to 60) and a gain of 4, against an adaptive threshold (:class:`OveruseDetector`,
  12.5 ms to start, between 6 and 600: it follows the signal up slowly and down quickly, so a
  competing TCP flow's steady queue does not starve the stream).
* :class:`AimdRate`: on overuse, 0.85 x the acknowledged bitrate; on normal, +8 %/s far from
  the link's capacity (an average of the rates where overuse was seen, started again when an
  overuse comes below its spread), about a packet per response time near it; on underuse,
  hold (the queue drains). Never above 1.5 x the acknowledged bitrate + 10 kbit/s.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

#: packets sent within this of a group's first belong to it
GROUP_S = 0.005
#: a group arriving within this of the previous one, faster than it was sent, joins it
BURST_S = 0.005


class Usage(enum.Enum):
    """What the detector makes of the delay trend."""

    NORMAL = "normal"
    OVERUSING = "overusing"
    UNDERUSING = "underusing"


@dataclass
class _Group:
    first_send: float
    last_send: float
    first_arrival: float
    last_arrival: float
    size: int


@dataclass(frozen=True)
class GroupDelta:
    """Between two consecutive groups: send and arrival time deltas (s), the later group's
    arrival (s, the browser's clock)."""

    send_delta: float
    arrival_delta: float
    arrival: float


class InterArrival:
    """Groups packets (in arrival order) and yields the deltas between complete groups."""

    def __init__(self) -> None:
        self._current: _Group | None = None
        self._previous: _Group | None = None

    def add(self, sent_at: float, arrival: float, size: int) -> GroupDelta | None:
        """One received packet; the delta between the last two complete groups when this one
        starts a new group, else None. A packet sent before the current group (reordered) is
        ignored."""
        current = self._current
        if current is None:
            self._current = _Group(sent_at, sent_at, arrival, arrival, size)
            return None
        if sent_at < current.first_send:
            return None
        if self._belongs(current, sent_at, arrival):
            current.last_send = max(current.last_send, sent_at)
            current.last_arrival = max(current.last_arrival, arrival)
            current.size += size
            return None
        delta = None
        previous = self._previous
        if previous is not None:
            arrival_delta = current.last_arrival - previous.last_arrival
            if abs(arrival_delta) > 3.0:  # the browser's clock jumped: start again
                self._previous = None
                self._current = _Group(sent_at, sent_at, arrival, arrival, size)
                return None
            delta = GroupDelta(
                current.last_send - previous.last_send, arrival_delta, current.last_arrival
            )
        self._previous = current
        self._current = _Group(sent_at, sent_at, arrival, arrival, size)
        return delta

    @staticmethod
    def _belongs(group: _Group, sent_at: float, arrival: float) -> bool:
        if sent_at - group.first_send <= GROUP_S:
            return True
        arrival_delta = arrival - group.last_arrival
        propagation = arrival_delta - (sent_at - group.last_send)
        return propagation < 0 and arrival_delta <= BURST_S


class OveruseDetector:
    """The adaptive threshold and the decision over the modified trend (values in ms)."""

    K_UP = 0.0087
    K_DOWN = 0.039
    OVERUSE_TIME_MS = 10.0

    def __init__(self) -> None:
        self.threshold = 12.5
        self.usage = Usage.NORMAL
        self._last_update: float | None = None
        self._time_over = -1.0
        self._overuse_count = 0
        self._prev_trend = 0.0

    def detect(self, modified: float, trend: float, send_delta_ms: float, now_ms: float) -> Usage:
        if modified > self.threshold:
            if self._time_over == -1:
                self._time_over = send_delta_ms / 2
            else:
                self._time_over += send_delta_ms
            self._overuse_count += 1
            if (
                self._time_over > self.OVERUSE_TIME_MS
                and self._overuse_count > 1
                and trend >= self._prev_trend
            ):
                self._time_over = 0.0
                self._overuse_count = 0
                self.usage = Usage.OVERUSING
        elif modified < -self.threshold:
            self._time_over = -1
            self._overuse_count = 0
            self.usage = Usage.UNDERUSING
        else:
            self._time_over = -1
            self._overuse_count = 0
            self.usage = Usage.NORMAL
        self._prev_trend = trend
        self._adapt(modified, now_ms)
        return self.usage

    def _adapt(self, modified: float, now_ms: float) -> None:
        if self._last_update is None:
            self._last_update = now_ms
        magnitude = abs(modified)
        if magnitude > self.threshold + 15:  # a spike: do not follow it
            self._last_update = now_ms
            return
        k = self.K_DOWN if magnitude < self.threshold else self.K_UP
        dt = min(now_ms - self._last_update, 100.0)
        self.threshold += k * (magnitude - self.threshold) * dt
        self.threshold = min(max(self.threshold, 6.0), 600.0)
        self._last_update = now_ms


class Trendline:
    """The delay trend over the last ``window`` groups and its overuse decision."""

    #: libwebrtc waits for a full window; a stream that starts above a bottleneck fills the
    #: queue within a few groups, and would then see a full queue as flat delay: the slope is
    #: taken from this many groups on (the scaling by the number of deltas damps its noise)
    MIN_POINTS = 5

    def __init__(self, window: int = 20, smoothing: float = 0.9, gain: float = 4.0) -> None:
        self.window = window
        self.smoothing = smoothing
        self.gain = gain
        self.detector = OveruseDetector()
        self.trend = 0.0
        self._deltas = 0
        self._first_arrival: float | None = None
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._history: deque[tuple[float, float]] = deque()

    @property
    def usage(self) -> Usage:
        return self.detector.usage

    def update(self, delta: GroupDelta) -> Usage:
        send_ms, arrival_ms = delta.send_delta * 1000, delta.arrival_delta * 1000
        now_ms = delta.arrival * 1000
        self._deltas = min(self._deltas + 1, 1000)
        if self._first_arrival is None:
            self._first_arrival = now_ms
        self._accumulated += arrival_ms - send_ms
        self._smoothed = self.smoothing * self._smoothed + (1 - self.smoothing) * self._accumulated
        self._history.append((now_ms - self._first_arrival, self._smoothed))
        if len(self._history) > self.window:
            self._history.popleft()
        if len(self._history) >= self.MIN_POINTS:
            self.trend = _slope(self._history) or self.trend
        if self._deltas < 2:
            return self.detector.usage
        modified = min(self._deltas, 60) * self.trend * self.gain
        return self.detector.detect(modified, self.trend, send_ms, now_ms)


def _slope(points: deque[tuple[float, float]]) -> float | None:
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den if den else None


class LinkCapacity:
    """An average of the acknowledged rates at which overuse was seen, and how far they spread
    (libwebrtc's ``LinkCapacityEstimator``, in kbit/s)."""

    def __init__(self) -> None:
        self.estimate: float | None = None
        self._variance = 0.4

    def on_overuse(self, bps: float) -> None:
        kbps, alpha = bps / 1000, 0.05
        if self.estimate is None:
            self.estimate = kbps
        else:
            self.estimate = (1 - alpha) * self.estimate + alpha * kbps
        norm = max(self.estimate, 1.0)
        error = self.estimate - kbps
        self._variance = (1 - alpha) * self._variance + alpha * error * error / norm
        self._variance = min(max(self._variance, 0.4), 2.5)

    def _spread(self) -> float:
        return 3 * math.sqrt(self._variance * (self.estimate or 0.0))

    def upper_bps(self) -> float:
        return ((self.estimate or 0.0) + self._spread()) * 1000

    def lower_bps(self) -> float:
        return ((self.estimate or 0.0) - self._spread()) * 1000

    def reset(self) -> None:
        self.estimate = None


class AimdRate:
    """The delay-based estimate: additive increase near the link's capacity, multiplicative far
    from it, a multiplicative decrease on overuse (bit/s)."""

    BETA = 0.85

    def __init__(self, start_bps: float, min_bps: float, max_bps: float) -> None:
        self.bps = float(start_bps)
        self.min_bps = float(min_bps)
        self.max_bps = float(max_bps)
        self.link = LinkCapacity()
        self.rtt = 0.1
        self._increasing = False  # HOLD until the first normal after a decrease
        self._last_change: float | None = None
        self.last_decrease: float | None = None

    def set_estimate(self, bps: float, now: float) -> None:
        """Jump to ``bps`` (a probe's result, or a stall's cut)."""
        self.bps = min(max(bps, self.min_bps), self.max_bps)
        self._last_change = now

    def update(self, usage: Usage, acked_bps: float | None, now: float) -> float:
        if usage is Usage.OVERUSING:
            self._decrease(acked_bps, now)
        elif usage is Usage.UNDERUSING:
            self._increasing = False  # hold while the queue drains
            self._last_change = now
        else:
            if not self._increasing:
                self._increasing = True
                self._last_change = now
            self._increase(acked_bps, now)
        return self.bps

    def _decrease(self, acked_bps: float | None, now: float) -> None:
        if self.last_decrease is not None and now - self.last_decrease < self.rtt:
            return  # the same overuse, seen again before the cut could act
        basis = acked_bps if acked_bps is not None else self.bps
        cut = self.BETA * basis
        if cut > self.bps and self.link.estimate is not None:
            cut = self.BETA * self.link.estimate * 1000
        if acked_bps is not None:
            if self.link.estimate is not None and acked_bps < self.link.lower_bps():
                # far below where overuse used to be seen (a capacity drop, or a cut the
                # receiver's jitter caused): start the average again from here, so that once
                # the rate is above it the increase is multiplicative, not a packet at a time
                self.link.reset()
            self.link.on_overuse(acked_bps)
        self.bps = min(max(min(self.bps, cut), self.min_bps), self.max_bps)
        self._increasing = False
        self._last_change = self.last_decrease = now

    def _increase(self, acked_bps: float | None, now: float) -> None:
        dt = min(now - (self._last_change if self._last_change is not None else now), 1.0)
        self._last_change = now
        if acked_bps is not None and self.link.estimate is not None:
            if acked_bps > self.link.upper_bps():
                self.link.reset()  # the capacity moved up: search fast again
        if self.link.estimate is not None:
            bits_per_frame = self.bps / 30
            packets = math.ceil(bits_per_frame / (8 * 1200))
            response = 2 * (self.rtt + 0.1)
            step = max(4000.0, bits_per_frame / packets / response) * dt
        else:
            step = max(1000.0, self.bps * (1.08**dt - 1))
        new = self.bps + step
        if acked_bps is not None:
            new = min(new, max(self.bps, 1.5 * acked_bps + 10_000))
        self.bps = min(max(new, self.min_bps), self.max_bps)
