"""The relay load test's rig (bench/relayload.py): the relay as its users run it, in processes of
its own on loopback, what each process costs, and the report (counts, JSON, table, plot).

- one process: `appliance relay serve` (aiohttp, rooms in memory), or today's threaded server
  (the Flask relay on cheroot's 48 threads, ``--server threaded``) for comparison;
- two processes: `appliance relay serve` twice on one Redis (Debian's redis-server, nothing on
  disk) behind Debian's HAProxy terminating TLS, with docs/relay.md's own configuration
  (tests/support/relay_group.py starts them as the failover tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.support.redis_server import free_tcp_port
from tests.support.wait import until

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Rig:
    """Where the load goes (``url``, ``cafile`` for TLS), the processes to watch by name, and
    how to kill one relay process (``kill``: its name -> a callable), if there are two."""

    url: str
    cafile: str | None
    processes: dict[str, psutil.Process]
    kill: dict[str, Any] = field(default_factory=dict)


def relay_toml(port: int, boxes: list[str], redis_url: str = "") -> str:
    lines = [
        'host = "127.0.0.1"',
        f"port = {port}",
        "boxes = [" + ", ".join(f'"{b}"' for b in boxes) + "]",
        'trusted_proxies = ["127.0.0.1"]',  # the load's viewers come forwarded, one address each
    ]
    if redis_url:
        lines += ['store = "redis"', "[redis]", f'url = "{redis_url}"']
    return "\n".join(lines) + "\n"


def serve_threaded(config: str) -> None:
    """Today's threaded relay on its own (``--serve-threaded``): Flask on cheroot's threads."""
    import threading

    from appliance import logs
    from appliance.relay import config as relay_config
    from appliance.relay.server import RelayServer

    logs.setup("INFO")
    server = RelayServer(relay_config.load(config)).start()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()


@contextlib.contextmanager
def one_process(workdir: Path, boxes: list[str], server: str) -> Iterator[Rig]:
    """One relay process, rooms in memory: `appliance relay serve`, or the threaded one."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_tcp_port()
    config = workdir / "relay.toml"
    config.write_text(relay_toml(port, boxes))
    if server == "threaded":
        args = [sys.executable, "-m", "bench.relayload", "--serve-threaded", str(config)]
    else:
        args = [sys.executable, "-m", "appliance", "relay", "serve", "--config", str(config)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    with (workdir / "relay.log").open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    try:
        until(lambda: _answers(port, process), 30.0, 0.1, "the relay answering")
        yield Rig(f"http://127.0.0.1:{port}", None, {"relay": psutil.Process(process.pid)})
    finally:
        _stop(process)


@contextlib.contextmanager
def two_processes(workdir: Path, boxes: list[str]) -> Iterator[Rig]:
    """Two `appliance relay serve` on one Redis behind HAProxy (docs/relay.md's configuration)."""
    from tests.support import relay_group
    from tests.support.redis_server import redis_server
    from tests.support.relay_group import haproxy, relay_process

    (workdir / "redis").mkdir(parents=True)
    # docs/relay.md's configuration as documented: health checks every 2 s (the failover tests
    # check every 0.5 s, with as short a timeout, which a loaded process may miss)
    tested = relay_group.documented_cfg
    relay_group.documented_cfg = lambda *a: tested(*a).replace("inter 500ms", "inter 2s")
    with (
        redis_server(workdir / "redis") as redis_url,
        relay_process(workdir / "a", "a", redis_url, boxes) as a,
        relay_process(workdir / "b", "b", redis_url, boxes) as b,
        haproxy(workdir / "proxy", a, b, documented=True) as proxy,
    ):
        watched = {
            "relay a": psutil.Process(a.process.pid),
            "relay b": psutil.Process(b.process.pid),
            "redis": _child_named("redis-server"),
            "haproxy": _child_named("haproxy"),
        }
        yield Rig(proxy.url, proxy.cafile, watched, {"relay a": a.kill, "relay b": b.kill})


def _answers(port: int, process: subprocess.Popen[bytes]) -> bool:
    import urllib.request

    if process.poll() is not None:
        raise RuntimeError(f"the relay exited with {process.returncode}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v/viewer.css", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _child_named(name: str) -> psutil.Process:
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name() == name:
                return child
    raise RuntimeError(f"no {name} process")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class Stats:
    origin: float
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (t, ms)
    sent: int = 0
    delivered: int = 0
    duplicates: int = 0
    retries: int = 0
    retried: Counter[str] = field(default_factory=Counter)  # why: a status or an error's type
    errors: Counter[str] = field(default_factory=Counter)
    rooms_lost: set[int] = field(default_factory=set)
    sessions_lost: set[int] = field(default_factory=set)
    probes: list[dict[str, float]] = field(default_factory=list)
    retry_events: list[tuple[float, str, str]] = field(default_factory=list)  # (t, why, method)
    connects: list[float] = field(default_factory=list)  # when each new connection was made
    answered: dict[str, float] = field(default_factory=dict)  # a message's send answered at
    # per message delivered: (key, sent, delivered, its poll's first and last attempt), s
    traces: list[tuple[str, float, float, float, float]] = field(default_factory=list)

    def retry(self, why: str, method: str) -> None:
        self.retries += 1
        self.retried[why] += 1
        self.retry_events.append((round(time.monotonic() - self.origin, 3), why, method))

    def traced(self, key: str, sent: float, now: float, tries: list[float]) -> None:
        o = self.origin
        self.traces.append((key, sent - o, now - o, tries[0], tries[-1]))


def breakdown(stats: Stats, slower_ms: float = 150.0) -> dict[str, Any]:
    """Where the time of the messages slower than ``slower_ms`` went, summed (s) and counted:
    the send's own answer (``send``: queued at the relay), the message stored with no poll of
    its receiver at the relay (``no_poll``: that poll cut, retried, or answering the previous
    batch), and the receiver's poll answering it (``answer``: woken, taken, back through the
    proxy); ``retried_polls``: how many came by a poll that had been retried."""
    parts = {"count": 0, "send": 0.0, "no_poll": 0.0, "answer": 0.0, "retried_polls": 0}
    per_second: Counter[int] = Counter()
    for key, sent, delivered, first, last in stats.traces:
        if (delivered - sent) * 1000 <= slower_ms:
            continue
        stored = stats.answered.get(key, delivered) - stats.origin
        stored = min(stored, delivered)
        parts["count"] += 1
        parts["send"] += stored - sent
        parts["no_poll"] += max(0.0, last - stored)
        parts["answer"] += delivered - max(stored, last)
        parts["retried_polls"] += first != last
        per_second[int(sent)] += 1
    out: dict[str, Any] = {k: round(v, 3) if isinstance(v, float) else v for k, v in parts.items()}
    out["sent_per_second"] = dict(sorted(per_second.items()))
    return out


class Sampler:
    """Every second: each watched process's RSS (MiB) and CPU (% of one core)."""

    def __init__(self, processes: dict[str, psutil.Process]) -> None:
        self.processes = {**processes, "load generator": psutil.Process()}
        self.samples: list[dict[str, Any]] = []
        self.origin = time.monotonic()
        for process in self.processes.values():
            with contextlib.suppress(psutil.Error):
                process.cpu_percent(None)

    def sample(self) -> None:
        row: dict[str, Any] = {"t": round(time.monotonic() - self.origin, 2)}
        for name, process in self.processes.items():
            try:
                with process.oneshot():
                    row[name] = {
                        "rss_mib": round(process.memory_info().rss / 2**20, 1),
                        "cpu_pct": round(process.cpu_percent(None), 1),
                    }
            except psutil.Error:  # killed on purpose
                row[name] = None
        self.samples.append(row)

    async def run(self) -> None:
        """Sample every second until cancelled."""
        while True:
            self.sample()
            await asyncio.sleep(1)

    def cpu_times(self) -> dict[str, float]:
        """Each process's CPU seconds so far (user + system), for a phase's average."""
        out = {}
        for name, process in self.processes.items():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                out[name] = times.user + times.system
        return out

    def peak_rss(self) -> dict[str, float]:
        peaks: dict[str, float] = {}
        for row in self.samples:
            for name in self.processes:
                if row.get(name):
                    peaks[name] = max(peaks.get(name, 0.0), row[name]["rss_mib"])
        return peaks


def plot(path: Path, result: dict[str, Any], samples: list[dict[str, Any]]) -> None:
    """Forwarding latency over the run and each process's RSS, with the kill marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    latencies = result["latencies"]
    if latencies:
        top.scatter([t for t, _ in latencies], [ms for _, ms in latencies], s=2, alpha=0.4)
    top.set_ylabel("forwarding latency (ms)")
    top.set_yscale("log")
    top.set_title(result["title"])
    names = [n for n in (samples[0] if samples else {}) if n != "t"]
    for name in names:
        points = [(row["t"], row[name]["rss_mib"]) for row in samples if row.get(name)]
        bottom.plot([t for t, _ in points], [v for _, v in points], label=name)
    bottom.set_ylabel("RSS (MiB)")
    bottom.set_xlabel("seconds since the rig started")
    bottom.legend(loc="upper left", fontsize=8)
    if result.get("killed_at") is not None:
        for axis in (top, bottom):
            axis.axvline(result["killed_at"], color="red", linestyle="--", linewidth=1)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def table(result: dict[str, Any]) -> str:
    rows = [
        ("rooms (box poll waiting) / viewers", f"{result['rooms']} / {result['seated']} seated"),
        ("setup (open, knock, seat all) s", f"{result['setup_s']:.1f}"),
        (
            "messages sent / delivered / dup.",
            f"{result['sent']} / {result['delivered']} / {result['duplicates']}",
        ),
        ("messages/s (asked)", f"{result['messages_per_s']:.1f} ({result['rate_asked']})"),
        (
            "forwarding p50 / p99 / max ms",
            f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f} / {result['max_ms']:.1f}",
        ),
        (
            "errors (retries)",
            f"{result['error_count']} ({result['retries']}) {result['errors'] or ''}",
        ),
        ("retried because", str(result["retried"] or "-")),
        (
            "rooms lost / sessions lost / incomplete",
            f"{result['rooms_lost']} / {result['sessions_lost']} / {result['sessions_incomplete']}",
        ),
        (
            "worst staff action / knock answered / heard s",
            " / ".join(f"{v:.3f}" for v in result["worst_probe"].values()),
        ),
    ]
    if result.get("killed_at") is not None:
        rows.append(("killed", f"{result['killed']} at t={result['killed_at']:.1f} s"))
    for name, rss in result["peak_rss_mib"].items():
        cpu = result["cpu_pct"].get(name, float("nan"))
        connected = result["connected_rss_mib"].get(name, float("nan"))
        rows.append(
            (f"{name}: RSS connected / peak MiB, CPU %", f"{connected:.0f} / {rss:.0f}, {cpu:.0f}")
        )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def report(
    args: argparse.Namespace,
    stats: Stats,
    sampler: Sampler,
    result: dict[str, Any],
    missing: list[int],
) -> dict[str, Any]:
    lat = sorted(ms for _, ms in stats.latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else float("nan")

    worst = {
        k: max((p[k] for p in stats.probes), default=float("nan"))
        for k in ("staff_s", "knock_answered_s", "knock_heard_s")
    }
    result.update(
        title=f"{args.processes} process(es), {args.server}, {args.rooms} rooms, {args.rate} msg/s",
        rooms=args.rooms,
        viewers=args.rooms,
        rate_asked=args.rate,
        sent=stats.sent,
        delivered=stats.delivered,
        duplicates=stats.duplicates,
        messages_per_s=stats.delivered / result["exchange_s"],
        p50_ms=pct(50),
        p99_ms=pct(99),
        max_ms=lat[-1] if lat else float("nan"),
        mean_ms=statistics.fmean(lat) if lat else float("nan"),
        errors=dict(stats.errors),
        error_count=sum(stats.errors.values()),
        retries=stats.retries,
        retried=dict(stats.retried),
        rooms_lost=len(stats.rooms_lost),
        sessions_lost=len(stats.sessions_lost),
        sessions_incomplete=len(missing),
        probes=stats.probes,
        worst_probe=worst,
        peak_rss_mib=sampler.peak_rss(),
        latencies=[(round(t, 3), round(ms, 2)) for t, ms in stats.latencies],
        retry_events=stats.retry_events,
        connects=stats.connects,
        slow_breakdown=breakdown(stats),
        traces=[(k, *(round(v, 4) for v in rest)) for k, *rest in stats.traces],
    )
    return result
