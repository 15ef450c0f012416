"""Inside the box's process (started by bench.netbox): where its memory is, every few seconds.

Each sample is a JSON line: RSS; the Python heap (objects the collector tracks, blocks the
interpreter has allocated, and with ``trace_frames`` the bytes tracemalloc traces); and glibc
malloc's own account (bytes in use, bytes free but kept in its heaps, the heaps' size, mmapped
chunks, the number of arenas). Growth of RSS with the Python heap flat and malloc's "in use"
flat is memory the allocator keeps (fragmentation); growth of "in use" is a native leak; growth
of the Python heap a Python one. With tracemalloc on, every tenth sample also names the five
source lines whose traced memory grew most since the first sample after ``baseline_s``.
tracemalloc is for hunting, not judging: its traces and snapshots live in the box's own heap
(the baseline snapshot alone added tens of MiB of RSS at 1080p) and it slows every allocation.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import json
import os
import statistics
import sys
import threading
import time
import tracemalloc
from typing import IO, Any

from appliance import allocator

MIB = 2**20
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def rollup() -> dict[str, float]:
    """The kernel's split of RSS (/proc/self/smaps_rollup), in MiB: anonymous memory (the heaps,
    Python's arenas, stacks), the rest (file pages: code and libraries) and the anonymous memory
    in transparent huge pages."""
    kib: dict[str, int] = {}
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in ("Rss", "Anonymous", "AnonHugePages"):
                    kib[name] = int(rest.split()[0])
    except (OSError, ValueError):
        return {}
    if len(kib) < 3:
        return {}
    return {
        "rss_anon_mb": kib["Anonymous"] / 1024,
        "rss_file_mb": (kib["Rss"] - kib["Anonymous"]) / 1024,
        "anon_huge_mb": kib["AnonHugePages"] / 1024,
    }


def arenas() -> int | None:
    """How many malloc arenas glibc has (from malloc_info's XML), or None elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        buf, size = ctypes.c_char_p(), ctypes.c_size_t()
        libc.open_memstream.restype = ctypes.c_void_p
        stream = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
        libc.malloc_info(0, ctypes.c_void_p(stream))
        libc.fclose(ctypes.c_void_p(stream))
        text = (buf.value or b"").decode()
        libc.free(buf)
    except (OSError, AttributeError):
        return None
    return text.count("<heap nr=")


def sample(t0: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "t": round(time.time(), 2),
        "up_s": round(time.monotonic() - t0, 1),
        "rss_mb": rss_bytes() / MIB,
        "py_objects": len(gc.get_objects()),
        "py_blocks": sys.getallocatedblocks(),
        **rollup(),
    }
    if tracemalloc.is_tracing():
        out["py_traced_mb"] = tracemalloc.get_traced_memory()[0] / MIB
    m = allocator.stats()
    if m is not None:
        out.update(
            malloc_in_use_mb=m.in_use / MIB,
            malloc_free_mb=m.free / MIB,
            malloc_heap_mb=m.heap / MIB,
            malloc_mmapped_mb=m.mmapped / MIB,
            arenas=arenas(),
        )
    return out


def top_growth(base: tracemalloc.Snapshot, n: int = 5) -> list[str]:
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    now = tracemalloc.take_snapshot().filter_traces(ignore)
    return [
        f"{s.traceback[0].filename}:{s.traceback[0].lineno} {s.size_diff / 1024:+.0f} KiB "
        f"({s.count_diff:+d})"
        for s in now.compare_to(base, "lineno")[:n]
    ]


#: set in the box's environment (``--box-env MEMPROBE_TYPES=1``): each sample also counts the
#: objects the collector tracks by type (the 15 commonest) and the threads by name, to hunt a
#: Python leak (tens of milliseconds a sample); ``=collect`` runs a full collection first, so
#: what is still counted is reachable, not garbage waiting for the collector
TYPES_ENV = "MEMPROBE_TYPES"


def census() -> dict[str, Any]:
    """The commonest types among the tracked objects, and the live threads by name."""
    types = collections.Counter(type(o).__name__ for o in gc.get_objects())
    names = collections.Counter(t.name.rstrip("0123456789-_ ") for t in threading.enumerate())
    return {"py_types": dict(types.most_common(15)), "thread_names": dict(names)}


def run(out: IO[str], every: float, baseline_s: float) -> None:
    t0 = time.monotonic()
    base: tracemalloc.Snapshot | None = None
    n = 0
    while True:
        line = sample(t0)
        if os.environ.get(TYPES_ENV):
            if os.environ[TYPES_ENV] == "collect":  # garbage apart from what is still reachable
                line["py_collected"] = gc.collect()
            line.update(census())
        if tracemalloc.is_tracing():
            if base is None and line["up_s"] >= baseline_s:
                base = tracemalloc.take_snapshot()
            elif base is not None and n % 10 == 0:
                line["py_top_growth"] = top_growth(base)
        n += 1
        out.write(json.dumps(line) + "\n")
        time.sleep(every)


def start(path: str, every: float = 10.0, trace_frames: int = 0, baseline_s: float = 0.0) -> None:
    """Sample into ``path`` every ``every`` seconds from a daemon thread (for the process's
    life); ``trace_frames`` > 0 turns tracemalloc on with that many frames per trace."""
    if trace_frames > 0:
        tracemalloc.start(trace_frames)
    out: IO[str] = open(path, "a", buffering=1)  # noqa: SIM115 - for the process's life
    threading.Thread(
        target=run, args=(out, every, baseline_s), name="memprobe", daemon=True
    ).start()


def read(path: str, since: float = 0.0) -> list[dict[str, Any]]:
    """The samples written to ``path`` (epoch time ``t`` >= ``since``)."""
    rows = []
    try:
        with open(path) as f:
            for text in f:
                try:
                    rows.append(json.loads(text))
                except ValueError:  # the line being written
                    continue
    except FileNotFoundError:
        return []
    return [r for r in rows if r["t"] >= since]


# -- for the soaks: read the samples, split the growth, draw it ---------------------------------


def latest(path: str) -> dict[str, Any]:
    """The newest sample in ``path`` without its times and RSS (the soak measures those)."""
    rows = read(path)
    if not rows:
        return {}
    row = dict(rows[-1])
    for key in ("t", "up_s", "rss_mb"):
        row.pop(key, None)
    return row


#: growth smaller than this share of the first RSS (or of the Python heap) is noise
NOISE = 0.02


def typical(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Each numeric field the ``samples`` all have, over them: the median, and for malloc's
    bytes in use the floor. Those swing by a frame's buffers (3 MiB at 1080p) from one sample to
    the next with the frames in flight, and by 20 MiB while an encoder restarts (two encoders at
    once); a leak raises the floor. So the soaks compare minutes, not single samples."""
    keys = [k for k, v in samples[0].items() if isinstance(v, int | float)]
    out: dict[str, Any] = {}
    for key in keys:
        values = [s[key] for s in samples if key in s]
        if len(values) == len(samples):
            out[key] = min(values) if key == "malloc_in_use_mb" else statistics.median(values)
    return out


def split(first: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    """Where the RSS growth from ``first`` to ``last`` went (samples with the probe's fields):
    the Python heap, malloc's bytes in use, or neither (memory glibc keeps after it was freed)."""
    rss_d = last["rss_mb"] - first["rss_mb"]
    out: dict[str, Any] = {"rss_growth_mb": rss_d}
    grew: list[str] = []
    if "py_objects" in first and "py_objects" in last:
        objects = (last["py_objects"] - first["py_objects"]) / max(1, first["py_objects"])
        blocks = (last["py_blocks"] - first["py_blocks"]) / max(1, first["py_blocks"])
        out.update(py_objects_growth=objects, py_blocks_growth=blocks)
        py_mb = 0.0
        if "py_traced_mb" in first and "py_traced_mb" in last:
            py_mb = last["py_traced_mb"] - first["py_traced_mb"]
            out["py_traced_growth_mb"] = py_mb
        if max(objects, blocks) > 5 * NOISE or py_mb > NOISE * first["rss_mb"]:
            grew.append("Python heap")
    if "malloc_in_use_mb" in first and "malloc_in_use_mb" in last:
        in_use = last["malloc_in_use_mb"] - first["malloc_in_use_mb"]
        out["malloc_in_use_growth_mb"] = in_use
        out["malloc_free_growth_mb"] = last["malloc_free_mb"] - first["malloc_free_mb"]
        kept = rss_d - max(0.0, in_use) - max(0.0, out.get("py_traced_growth_mb", 0.0))
        out["kept_growth_mb"] = kept
        if in_use > NOISE * first["rss_mb"]:
            grew.append("malloc in use (native)")
        # without tracemalloc's bytes, a growing Python heap (its own arenas, outside malloc)
        # is in "the rest" too: then the rest is not blamed on the allocator
        python_unmeasured = "Python heap" in grew and "py_traced_growth_mb" not in out
        if kept > NOISE * first["rss_mb"] and not python_unmeasured:
            grew.append("kept by the allocator")
    if "anon_huge_mb" in first and "anon_huge_mb" in last:
        out["anon_huge_growth_mb"] = last["anon_huge_mb"] - first["anon_huge_mb"]
    out["grew"] = ", ".join(grew) if grew else "nothing"
    return out


def describe(split_: dict[str, Any]) -> str:
    """One sentence for the report from :func:`split`'s result."""
    parts = [f"RSS {split_['rss_growth_mb']:+.1f} MiB"]
    if "py_objects_growth" in split_:
        parts.append(
            f"Python objects {split_['py_objects_growth'] * 100:+.1f} %, "
            f"blocks {split_['py_blocks_growth'] * 100:+.1f} %"
        )
    if "py_traced_growth_mb" in split_:
        parts.append(f"Python heap traced {split_['py_traced_growth_mb']:+.1f} MiB")
    if "malloc_in_use_growth_mb" in split_:
        parts.append(f"malloc in use {split_['malloc_in_use_growth_mb']:+.1f} MiB")
        parts.append(f"the rest (kept by the allocator) {split_['kept_growth_mb']:+.1f} MiB")
    if "anon_huge_growth_mb" in split_:
        parts.append(f"in transparent huge pages {split_['anon_huge_growth_mb']:+.1f} MiB")
    return "; ".join(parts) + f": grew: {split_['grew']}"


def plot_split(ax: Any, t: list[float], samples: list[dict[str, Any]]) -> None:
    """RSS, malloc in use, malloc free (kept) and the Python heap over ``t`` on ``ax``."""
    ax.plot(t, [s["rss_mb"] for s in samples], label="RSS")
    for key, label in (
        ("malloc_in_use_mb", "malloc in use"),
        ("malloc_free_mb", "malloc free, kept"),
        ("py_traced_mb", "Python heap (tracemalloc)"),
        ("anon_huge_mb", "in transparent huge pages"),
    ):
        if all(key in s for s in samples):
            ax.plot(t, [s[key] for s in samples], label=label)
    ax.set_ylabel("box memory (MiB)")
    ax.legend(fontsize=7, ncol=2)
    if all("py_objects" in s for s in samples):
        twin = ax.twinx()
        twin.plot(t, [s["py_objects"] / 1000 for s in samples], color="grey", ls=":", lw=1)
        twin.set_ylabel("Python objects (k, dotted)", fontsize=8)
