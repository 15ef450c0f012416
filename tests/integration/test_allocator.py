"""The allocator's figures, encoder restarts that leak nothing (Python objects, malloc's bytes
in use) while the memory they free is handed back, and transparent huge pages turned off."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading

import av
import numpy as np
import pytest

from appliance import allocator
from appliance.encode.software import SoftwareEncoder

glibc = pytest.mark.skipif(allocator.stats() is None, reason="glibc's malloc only")


@glibc
def test_the_figures_add_up() -> None:
    stats = allocator.stats()
    assert stats is not None
    assert stats.in_use > 0 and stats.free >= 0 and stats.mmapped >= 0
    assert stats.heap >= stats.in_use - stats.mmapped
    assert isinstance(allocator.release_free_memory(), bool)


def restarts(encoder: SoftwareEncoder, cycles: int) -> None:
    """``cycles`` times: three frames at 320x240, three at 160x120 (a restart each way), as the
    ladder's smaller step and back do, and the free memory released after each restart."""
    base = np.zeros((240 * 3 // 2, 320), np.uint8)
    pts = 0
    for _ in range(cycles):
        for width, height in ((320, 240), (160, 120)):
            for _ in range(3):
                frame = av.VideoFrame.from_ndarray(base, format="yuv420p")
                if width != 320:
                    frame = frame.reformat(width=width, height=height, format="yuv420p")
                pts += 3000
                encoder.encode(frame, pts)
            allocator.release_free_memory()


@glibc
def test_encoder_restarts_leak_no_object_and_no_native_memory() -> None:
    encoder = SoftwareEncoder(320, 240, 30, bitrate=300_000, keyframe_interval=10, threads=1)
    result: dict[str, int] = {}

    def run() -> None:  # in its own thread (and malloc arena) like the media thread
        restarts(encoder, 10)  # warm up: the allocator's and libx264's one-off allocations
        gc.collect()
        stats = allocator.stats()
        assert stats is not None
        result["objects"], result["in_use"] = len(gc.get_objects()), stats.in_use
        restarts(encoder, 60)
        gc.collect()
        stats = allocator.stats()
        assert stats is not None
        result["objects_after"], result["in_use_after"] = len(gc.get_objects()), stats.in_use

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    encoder.close()
    assert result["objects_after"] - result["objects"] < 60, "one object per restart: a leak"
    # a leaked 160x120 libx264 context holds well over 100 KiB: 120 of them would be MiBs
    assert result["in_use_after"] - result["in_use"] < 2**20, result


@glibc
def test_transparent_huge_pages_are_turned_off_for_the_process() -> None:
    """In a child process, not this one: the kernel's own word for it (/proc/self/status)."""
    code = (
        "from appliance import allocator\n"
        "assert allocator.disable_transparent_huge_pages()\n"
        "status = open('/proc/self/status').read()\n"
        "print([l for l in status.splitlines() if l.startswith('THP_enabled')])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert "'THP_enabled:\\t0'" in out or "[]" in out  # older kernels do not say
