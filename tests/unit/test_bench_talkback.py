"""The talk-back and sound benchmarks' own arithmetic (bench/talkback.py, bench/soundstats.py):
each burst paired with the one the box played, and a sound gap measured from Chromium's
counters."""

from __future__ import annotations

from bench.soundstats import longest_gap_ms, verdict
from bench.talkback import pair


def test_each_burst_pairs_with_the_first_onset_the_box_played_after_it() -> None:
    phone = [10.0, 11.0, 12.0]
    box = [9.95, 10.12, 11.3, 13.5]  # one before any burst; the third burst never played
    assert [round(v) for v in pair(phone, box)] == [120, 300]


def rows(concealed_per_window: list[int], total: int = 2400) -> list[dict[str, float]]:
    """Cumulative counters every 50 ms at 48 kHz."""
    out, c = [{"total": 0, "concealed": 0, "duration": 0.0}], 0
    for n, k in enumerate(concealed_per_window, 1):
        c += k
        out.append({"total": n * total, "concealed": c, "duration": n * 0.05})
    return out


def test_a_gap_is_the_longest_run_of_mostly_concealed_windows() -> None:
    # 150 ms concealed in a row, then sound, then a 100 ms gap, and scattered loss never counts
    windows = [0, 2400, 2400, 2400, 0, 480, 0, 2400, 2400, 0, 960]
    assert round(longest_gap_ms(rows(windows))) == 150
    assert longest_gap_ms(rows([480] * 20)) == 0
    assert verdict("cap1", {"longest_gap_ms": 150.0}) == "PASS"
    assert verdict("rfc8867", {"longest_gap_ms": 250.0}) == "MISS"
    assert verdict("loss2", {"concealed_ratio": 0.03}) == "MISS"
