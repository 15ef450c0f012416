"""`make soak`: the box live for an hour at 1080p30 under RFC 8867 5.1's capacity steps, repeated.

The box runs as its own process (bench.netbox), headless Chromium watches; the capacity steps
1.0 -> 2.5 -> 0.6 -> 1.0 x ``--reference`` Mbit/s every 100 s (50 ms one way, 300 ms queue) for
``--minutes``. Every ``--every`` seconds: the box's RSS, open file descriptors and threads, the
frames Chromium presented, and from inside the box (bench.memprobe) its Python heap (objects,
blocks, with ``--tracemalloc`` the bytes traced) and glibc malloc's bytes in use and free. Growth
is judged from the first sample after ``--warmup`` seconds to the end: RSS <= 5 %, no fd or
thread growth; and the report says which grew: the Python heap, malloc's bytes in use (a native
leak) or neither (memory the allocator keeps). Prints a table, writes JSON and a PNG under
bench/results/.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import memprobe
from bench.network import NetBox, join_live

ROOT = Path(__file__).resolve().parent.parent


def sample(box: NetBox, page: Any, t0: float, probe: Path) -> dict[str, Any]:
    ps = box.ps
    presented = page.evaluate("window.probe.presented")
    return {
        "t": round(time.monotonic() - t0, 1),
        "rss_mb": ps.memory_info().rss / 2**20,
        "fds": ps.num_fds(),
        "threads": ps.num_threads(),
        "presented": presented,
        **memprobe.latest(str(probe)),
    }


def probe_options(
    path: Path,
    every: float,
    trace_frames: int,
    baseline: float,
    release: bool = True,
    keep_thp: bool = False,
) -> tuple[str, ...]:
    """bench.netbox's options for the memory probe (and ``--no-release``, ``--keep-thp``: the
    box as it was before the memory fixes)."""
    return (
        *("--memory", str(path), "--memory-every", str(every)),
        *("--tracemalloc", str(trace_frames), "--memory-baseline", str(baseline)),
        *(() if release else ("--no-release",)),
        *(("--keep-thp",) if keep_thp else ()),
    )


def box_env(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs (``--box-env``) as a dict."""
    return dict(p.split("=", 1) for p in pairs)


def judge(samples: list[dict[str, Any]], warmup: float) -> dict[str, Any]:
    settled = [s for s in samples if s["t"] >= warmup] or samples
    first, last = settled[0], settled[-1]
    rss_growth = (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"]
    # the first minute after the warm-up against the last minute
    window = max(1, min(6, len(settled) // 4))
    head, tail = settled[:window], settled[-window:]
    out = {
        "rss_first_mb": first["rss_mb"],
        "rss_last_mb": last["rss_mb"],
        "rss_max_mb": max(s["rss_mb"] for s in settled),
        "rss_growth": rss_growth,
        # fds and threads by the most open within each minute: a worker that comes and goes
        # (an executor's, an encoder restart's) is not growth; one that stays is
        "fds_first": max(s["fds"] for s in head),
        "fds_last": max(s["fds"] for s in tail),
        "fds_max": max(s["fds"] for s in settled),
        "threads_first": max(s["threads"] for s in head),
        "threads_last": max(s["threads"] for s in tail),
        "threads_max": max(s["threads"] for s in settled),
        "fps": (last["presented"] - first["presented"]) / max(1.0, last["t"] - first["t"]),
    }
    # where it went
    out.update(memprobe.split(memprobe.typical(head), memprobe.typical(tail)))
    out["verdict"] = (
        "PASS"
        if rss_growth <= 0.05
        and out["fds_last"] <= out["fds_first"]
        and out["threads_last"] <= out["threads_first"]
        else "MISS"
    )
    return out


def plot(samples: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] / 60 for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    memprobe.plot_split(axes[0], t, samples)
    axes[1].plot(t, [s["fds"] for s in samples], label="open fds")
    axes[1].plot(t, [s["threads"] for s in samples], label="threads")
    axes[1].legend()
    fps = [0.0] + [
        (b["presented"] - a["presented"]) / max(1e-9, b["t"] - a["t"])
        for a, b in zip(samples, samples[1:], strict=False)
    ]
    axes[2].plot(t, fps)
    axes[2].set_ylabel("frames shown /s")
    axes[2].set_xlabel("minutes")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--reference", type=float, default=1.0, help="Mbit/s of the 1.0x step")
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=300.0)
    parser.add_argument("--tracemalloc", type=int, default=0, help="frames per trace (0: off)")
    parser.add_argument("--box-env", action="append", default=[], help="KEY=VALUE for the box")
    parser.add_argument(
        "--no-release", action="store_true", help="the box without its memory releases"
    )
    parser.add_argument(
        "--keep-thp", action="store_true", help="the box with transparent huge pages"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    seconds = args.minutes * 60

    from playwright.sync_api import sync_playwright

    from appliance.stream.compat import confine_host_addresses
    from bench.netem import Impairment, rfc8867_steps
    from tests.support import browser

    confine_host_addresses(("127.0.0.1",))
    samples: list[dict[str, Any]] = []
    top: list[str] | None = None
    steps = rfc8867_steps(args.reference)
    repeated = [(at + 100 * k, mbit) for k in range(int(seconds // 100) + 1) for at, mbit in steps]
    with (
        sync_playwright() as pw,
        tempfile.TemporaryDirectory() as tmp,
        Impairment(max_seconds=seconds + 300) as net,
    ):
        chromium = browser.launch(pw)
        probe = Path(tmp) / "memory.jsonl"
        memory = probe_options(
            probe,
            args.every,
            args.tracemalloc,
            args.warmup,
            release=not args.no_release,
            keep_thp=args.keep_thp,
        )
        box = NetBox(width, height, Path(tmp), memory=memory, env=box_env(args.box_env))
        context = None
        try:
            net.delay(50)
            net.cap(steps[0][1], 300)
            context, page = join_live(chromium, box, box.line("viewer: "))
            t0 = time.monotonic()
            net.profile(repeated, duration_s=seconds + 10, queue_ms=300)
            while time.monotonic() - t0 < seconds:
                samples.append(sample(box, page, t0, probe))
                page.evaluate("window.probe.frames.length = 0")  # bounded in the page
                print(json.dumps(samples[-1]), flush=True)
                time.sleep(args.every)
            samples.append(sample(box, page, t0, probe))
            tops = [r["py_top_growth"] for r in memprobe.read(str(probe)) if "py_top_growth" in r]
            top = tops[-1] if tops else None
        finally:
            if context is not None:
                context.close()
            box.stop()
            chromium.close()
    result = judge(samples, args.warmup)
    if top:
        result["py_top_growth"] = "; ".join(top)
    lines = ["| measure | value |", "|---|---|"] + [
        f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |"
        for k, v in result.items()
    ]
    print("\n".join(lines))
    print("memory, after the warm-up to the end:", memprobe.describe(result))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    payload.update(result=result, samples=samples)
    (args.out / f"soak-{stamp}.json").write_text(json.dumps(payload, indent=1))
    plot(samples, args.out / "soak.png")
    print(f"wrote {args.out / f'soak-{stamp}.json'} and {args.out / 'soak.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
