"""The table and the plot of `make bench-network` (bench/network.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.netscenarios import SCENARIOS


def _pct(value: float | None) -> str:
    return "" if value is None or value != value else f"{value * 100:.0f} %"


def _num(value: float | None, digits: int = 0) -> str:
    return "" if value is None or value != value else f"{value:.{digits}f}"


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = [
        "| scenario | size | sender | fps (after 5 s) | freezes > 0.5 s (after 5 s) | "
        "longest after 5 s (s) | latency p50/p95 (ms) | utilisation sent / delivered | "
        "one-way delay p95 - base (ms) | share box / tcp | steps | recovery (s) | verdict |",
        "|---" * 13 + "|",
    ]
    for name, sizes in results.items():
        for key, r in sizes.items():
            size, _, sender = key.partition(" ")
            share = f"{_pct(r.get('share'))} / {_pct(r.get('tcp_share'))}" if "share" in r else ""
            lines.append(
                f"| {name} | {size} | {sender or 'box'} | {r['fps']:.1f} "
                f"({r['fps_converged']:.1f}) | {r['freezes_over_500ms']} "
                f"({r['freezes_over_500ms_converged']}) | "
                f"{_num(r['longest_freeze_converged_s'], 2)} | "
                f"{_num(r['latency_p50_ms'])} / {_num(r['latency_p95_ms'])} | "
                f"{_pct(r.get('utilisation'))} / {_pct(r.get('delivered_utilisation'))} | "
                f"{_num(r.get('owd_excess_p95_ms'))} | {share} | {','.join(r['steps'])} | "
                f"{_num(r.get('recovery_s'), 2)} | {r['verdict']} |"
            )
    return "\n".join(lines)


def plot(results: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.8 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        s = SCENARIOS[name]
        for key, r in results[name].items():
            t = [d["t"] for d in r["series"]]
            style = "--" if "libwebrtc" in key else "-"
            ax.plot(t, [d["sent"] / 1e6 for d in r["series"]], ls=style, label=f"{key} sent")
            if "libwebrtc" not in key:
                ax.plot(t, [d["target"] / 1e6 for d in r["series"]], ls=":", label=f"{key} target")
        if s.capacity:
            xs, ys = [], []
            for i, (at, mbit) in enumerate(s.capacity):
                end = s.capacity[i + 1][0] if i + 1 < len(s.capacity) else s.seconds
                xs += [at, end]
                ys += [mbit, mbit]
            ax.plot(xs, ys, color="black", lw=2, label="capacity")
        if s.blackout:
            ax.axvspan(*s.blackout, color="grey", alpha=0.3, label="blackout")
        ax.set_title(name)
        ax.set_ylabel("Mbit/s")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
