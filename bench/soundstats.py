"""The sound under `make bench-network`'s scenarios (issue 16): Chromium's own counters for the
audio track it received (getStats inbound-rtp, kind audio), sampled every :data:`EVERY_MS` while
the scenario runs. The page's sound is turned on first with its own button ("Tap for sound"), as
the co-parent does: a muted page is not measured.

- **concealed** = concealedSamples / totalSamplesReceived over the scenario (the samples NetEq
  made up for lost or late packets): target <= 2 % at 2 % loss and 80 ms RTT (``loss2``);
- **longest sound gap**: the longest run of consecutive samples windows in which more than half
  the samples played were concealed, as the concealed samples in that run (ms): target <= 200 ms
  at the 1 Mbit/s cap (``cap1``) and through RFC 8867's drop (``rfc8867``).

bench.network calls :func:`start` when its window opens and :func:`figures` when it closes;
the figures go into the run's JSON under ``sound``.
"""

from __future__ import annotations

from typing import Any

EVERY_MS = 50
CONCEALED_MAX = 0.02  # loss2
GAP_MAX_MS = 200.0  # cap1, rfc8867

SAMPLE_JS = """(every) => {
  window.soundStats = [];
  const sample = async () => {
    for (const s of (await window.viewer.pc.getStats()).values()) {
      if (s.type === "inbound-rtp" && s.kind === "audio" && s.totalSamplesReceived !== undefined) {
        window.soundStats.push({ t: performance.timeOrigin + performance.now(),
          total: s.totalSamplesReceived, concealed: s.concealedSamples,
          silent: s.silentConcealedSamples || 0, events: s.concealmentEvents || 0,
          lost: s.packetsLost || 0, received: s.packetsReceived || 0,
          duration: s.totalSamplesDuration || 0 });
        break;
      }
    }
  };
  window.soundSampler = setInterval(sample, every);
  return sample();
}"""


def start(page: Any) -> None:
    """The page's sound on (its button), then its audio counters sampled."""
    from tests.support.browser import wait_js

    wait_js(page, "document.body.dataset.sound === 'muted' || document.body.dataset.sound === 'on'")
    if page.evaluate("document.body.dataset.sound") == "muted":
        page.click("#sound")  # the tap: the page unmutes inside its handler
        wait_js(page, "document.body.dataset.sound === 'on'")
    page.evaluate(SAMPLE_JS, EVERY_MS)


def longest_gap_ms(rows: list[dict[str, Any]]) -> float:
    """The longest run of windows more than half concealed, in concealed milliseconds."""
    longest = run = 0.0
    for a, b in zip(rows, rows[1:], strict=False):
        total = b["total"] - a["total"]
        concealed = b["concealed"] - a["concealed"]
        rate = total / max((b["duration"] - a["duration"]), 1e-9) if total else 48_000.0
        if total > 0 and concealed > total / 2:
            run += concealed / rate * 1000
            longest = max(longest, run)
        else:
            run = 0.0
    return longest


def figures(page: Any) -> dict[str, Any]:
    """The scenario's sound figures (the sampler stopped)."""
    rows: list[dict[str, Any]] = page.evaluate(
        "clearInterval(window.soundSampler); window.soundStats"
    )
    if len(rows) < 2:
        return {"samples": len(rows)}
    first, last = rows[0], rows[-1]
    total = last["total"] - first["total"]
    concealed = last["concealed"] - first["concealed"]
    return {
        "samples": len(rows),
        "seconds": (last["t"] - first["t"]) / 1000,
        "samples_received": total,
        "concealed_ratio": concealed / total if total else None,
        "silent_concealed": last["silent"] - first["silent"],
        "concealment_events": last["events"] - first["events"],
        "packets_lost": last["lost"] - first["lost"],
        "packets_received": last["received"] - first["received"],
        "longest_gap_ms": longest_gap_ms(rows),
    }


def verdict(name: str, sound: dict[str, Any]) -> str:
    """The sound's target in scenario ``name`` (none elsewhere)."""
    if name == "loss2" and sound.get("concealed_ratio") is not None:
        return "PASS" if sound["concealed_ratio"] <= CONCEALED_MAX else "MISS"
    if name in ("cap1", "rfc8867") and "longest_gap_ms" in sound:
        return "PASS" if sound["longest_gap_ms"] <= GAP_MAX_MS else "MISS"
    return ""


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One row per run that measured the sound."""
    lines = [
        "| scenario | size | concealed | longest sound gap (ms) | packets lost | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        for size, r in runs.items():
            sound = r.get("sound")
            if not sound or "longest_gap_ms" not in sound:
                continue
            ratio = sound["concealed_ratio"]
            lines.append(
                f"| {name} | {size} | {'-' if ratio is None else f'{ratio * 100:.2f} %'} | "
                f"{sound['longest_gap_ms']:.0f} | {sound['packets_lost']} | "
                f"{verdict(name, sound)} |"
            )
    return "\n".join(lines)
