"""`make soak-day`: a clinic's day of exams, back to back, on one box process.

Each exam: the box opens a session (the demo's Enter), headless Chromium joins as the co-parent
and is admitted, the link goes through RFC 8867 5.1's capacity steps (1.0 -> 2.5 -> 0.6 -> 1.0 x
``--reference`` Mbit/s at 0/40/60/80 s of 100 s, 50 ms one way, 300 ms queue: the rate ladder
down to its smaller picture and back, so the encoder restarts) ``--cycles`` times, then the
viewer leaves and the session is ended (a long press); the box is given ``--settle`` seconds
and its memory is read: RSS, and from inside it (bench.memprobe) the Python heap and glibc
malloc's bytes in use and free. Exams follow each other for ``--minutes`` (at most
``--max-sessions``). It passes when every exam's end RSS is within ``--tolerance`` (5 %) of the
first exam's. Prints a table, writes JSON and a PNG under bench/results/. Root, inside a
loopback-only namespace (bench/network.sh makes one).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import memprobe
from bench.network import NetBox, join_live
from bench.soak import box_env, probe_options

ROOT = Path(__file__).resolve().parent.parent
CYCLE_S = 100.0  # RFC 8867 5.1's steps take 100 s


class Terminal:
    """The box's terminal read by a thread, so every wait for a line has a real deadline (a
    blocked ``readline`` would hang the day)."""

    def __init__(self, box: NetBox) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(box,), name="box-stdout", daemon=True).start()

    def _read(self, box: NetBox) -> None:
        assert box.proc.stdout is not None
        for line in box.proc.stdout:
            self._lines.put(line.strip())

    def wait(self, prefix: str, suffix: str = "", timeout: float = 30.0) -> str:
        """The next line starting with ``prefix`` and ending with ``suffix`` (its rest)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line.startswith(prefix) and line.endswith(suffix):
                return line[len(prefix) :].strip()
        raise RuntimeError(f"the box printed no {prefix!r}...{suffix!r} line in {timeout:.0f} s")


def idle_words() -> str:
    """How the demo's LED line ends when no session is open (the staff page's words)."""
    from appliance import demo
    from appliance.state import State

    words = getattr(demo, "led_words", None)
    return str(words(State.IDLE)) if words is not None else State.IDLE.value


def exam(
    box: NetBox, term: Terminal, chromium: Any, net: Any, link: str, args: argparse.Namespace
) -> dict:
    """One session, from the viewer's join to the end of the session and the settle."""
    from bench.netem import rfc8867_steps

    steps = rfc8867_steps(args.reference)
    started, since = time.monotonic(), time.time()
    net.cap(steps[0][1], 300)
    context, page = join_live(chromium, box, link)
    try:
        repeated = [(at + CYCLE_S * k, mbit) for k in range(args.cycles) for at, mbit in steps]
        net.profile(repeated, duration_s=CYCLE_S * args.cycles, queue_ms=300).wait()
        presented = page.evaluate("window.probe.presented")
        box.key("l")  # the long press: the session ends, the viewer's page says so
        term.wait("[LED", suffix=idle_words())
    finally:
        context.close()
    time.sleep(args.settle)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "presented": presented,
        "rss_mb": box.ps.memory_info().rss / 2**20,
        "fds": box.ps.num_fds(),
        "threads": box.ps.num_threads(),
        "steps": sorted({d["step"] for d in box.read_decisions(since)}),
    }


def fresh_sample(path: Path, after: float, timeout: float) -> dict[str, Any]:
    """The memory probe's first sample taken after ``after`` (epoch s), waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = memprobe.read(str(path), since=after)
        if rows:
            row = dict(rows[0])
            for key in ("t", "up_s", "rss_mb"):
                row.pop(key, None)
            return row
        time.sleep(0.5)
    return {}


def judge(sessions: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    first = sessions[0]["rss_mb"]
    worst = max(sessions, key=lambda s: abs(s["rss_mb"] - first))
    out: dict[str, Any] = {
        "sessions": len(sessions),
        "rss_first_end_mb": first,
        "rss_last_end_mb": sessions[-1]["rss_mb"],
        "rss_max_end_mb": max(s["rss_mb"] for s in sessions),
        "worst_session": worst["n"],
        "worst_change": (worst["rss_mb"] - first) / first,
    }
    out.update(memprobe.split(sessions[0], sessions[-1]))
    out["verdict"] = "PASS" if abs(out["worst_change"]) <= tolerance else "MISS"
    return out


def table(sessions: list[dict[str, Any]]) -> str:
    first = sessions[0]["rss_mb"]
    lines = [
        "| exam | ended at (min) | frames shown | end RSS (MiB) | vs first | malloc in use | "
        "malloc free | Python objects | fds | threads |",
        "|---" * 10 + "|",
    ]
    for s in sessions:
        lines.append(
            f"| {s['n']} | {s['at'] / 60:.1f} | {s['presented']} | {s['rss_mb']:.1f} | "
            f"{(s['rss_mb'] - first) / first * 100:+.1f} % | "
            f"{s.get('malloc_in_use_mb', float('nan')):.1f} | "
            f"{s.get('malloc_free_mb', float('nan')):.1f} | {s.get('py_objects', '')} | "
            f"{s['fds']} | {s['threads']} |"
        )
    return "\n".join(lines)


def plot(
    sessions: list[dict[str, Any]], samples: list[dict[str, Any]], tolerance: float, path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(8, 7))
    first = sessions[0]["rss_mb"]
    n = [s["n"] for s in sessions]
    axes[0].plot(n, [s["rss_mb"] for s in sessions], marker="o", label="RSS at the exam's end")
    axes[0].axhspan(first * (1 - tolerance), first * (1 + tolerance), color="green", alpha=0.1)
    for key, label in (("malloc_in_use_mb", "malloc in use"), ("malloc_free_mb", "malloc free")):
        if all(key in s for s in sessions):
            axes[0].plot(n, [s[key] for s in sessions], marker=".", label=label)
    axes[0].set_xlabel("exam")
    axes[0].set_ylabel("MiB")
    axes[0].set_title(f"box memory at each exam's end (band: first +- {tolerance * 100:.0f} %)")
    axes[0].legend(fontsize=7)
    t0 = samples[0]["t"] if samples else 0.0
    t = [(s["t"] - t0) / 60 for s in samples]
    if samples:
        memprobe.plot_split(axes[1], t, samples)
    for s in sessions:
        end = (s["end_t"] - t0) if "end_t" in s else s["at"]
        axes[1].axvline(end / 60, color="grey", lw=0.5)
    axes[1].set_xlabel("minutes (grey: an exam's end)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.soakday", description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--max-sessions", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=1, help="RFC 8867 5.1 cycles per exam")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--reference", type=float, default=1.0, help="Mbit/s of the 1.0x step")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before the reading")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--every", type=float, default=5.0, help="memory probe's period (s)")
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
    from bench.netem import Impairment
    from tests.support import browser

    confine_host_addresses(("127.0.0.1",))
    sessions: list[dict[str, Any]] = []
    with (
        sync_playwright() as pw,
        tempfile.TemporaryDirectory() as tmp,
        Impairment(max_seconds=seconds + 600) as net,
    ):
        chromium = browser.launch(pw)
        probe = Path(tmp) / "memory.jsonl"
        memory = probe_options(
            probe, args.every, 0, 0.0, release=not args.no_release, keep_thp=args.keep_thp
        )
        box = NetBox(width, height, Path(tmp), memory=memory, env=box_env(args.box_env))
        try:
            net.delay(50)
            term = Terminal(box)
            link = term.wait("viewer: ")  # the demo opens the first session itself
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds and len(sessions) < args.max_sessions:
                one = exam(box, term, chromium, net, link, args)
                one.update(n=len(sessions) + 1, at=round(time.monotonic() - t0, 1))
                one["end_t"] = time.time()  # on the memory probe's clock
                one.update(fresh_sample(probe, time.time(), 2 * args.every + 5))
                sessions.append(one)
                print(json.dumps(one), flush=True)
                box.key("")  # the next exam's session
                link = term.wait("viewer: ")
            samples = memprobe.read(str(probe))
        finally:
            box.stop()
            chromium.close()
    result = judge(sessions, args.tolerance)
    text = table(sessions)
    print(text)
    for key, value in result.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    print("memory, first exam's end to the last's:", memprobe.describe(result))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    payload.update(result=result, sessions=sessions, samples=samples)
    (args.out / f"soakday-{stamp}.json").write_text(json.dumps(payload, indent=1))
    (args.out / "soakday-latest.md").write_text(text + "\n")
    plot(sessions, samples, args.tolerance, args.out / "soakday.png")
    print(f"wrote {args.out / f'soakday-{stamp}.json'} and {args.out / 'soakday.png'}")
    return 0 if result["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
