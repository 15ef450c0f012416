"""The C allocator (glibc malloc) under the process: its figures, giving free memory back, and
no transparent huge pages.

libx264 and FFmpeg's scaler allocate their buffers with malloc, sized by the picture. When the
picture size changes (the rate ladder's smaller step, and back), the old encoder's buffers are
freed and the new one's allocated. glibc keeps what was freed in its heaps (after the first
large buffer is freed it raises its mmap threshold, up to 32 MiB, so later picture-sized
buffers come from a heap, not from mmap of their own). Two things follow, both measured
(docs/reliability.md, "Memory"), neither a leak (the Python heap and malloc's bytes in use stay
flat):

* the freed memory stays resident: :func:`release_free_memory` (``malloc_trim(0)``) hands the
  free pages of every heap back to the kernel; the media thread calls it after each restart;
* libx264 asks for transparent huge pages (``madvise(MADV_HUGEPAGE)``) for every buffer of
  1.75 MiB or more. Inside a heap that advice outlives the buffer, and the kernel's khugepaged
  later fills whole 2 MiB pages around whatever is left in use there: RSS steps up at
  khugepaged's pace, minutes apart, while nothing more is in use.
  :func:`disable_transparent_huge_pages` (``prctl(PR_SET_THP_DISABLE)``) turns them off for the
  box's process; the composition root calls it before anything is encoded.

Imports nothing of the appliance. Elsewhere than glibc on Linux these functions do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [  # noqa: RUF012 - ctypes's own declaration
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # bytes from the heaps (not mmap)
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",  # bytes in mmapped chunks
            "usmblks",
            "fsmblks",
            "uordblks",  # bytes in use, from the heaps
            "fordblks",  # bytes free in the heaps: kept by the allocator
            "keepcost",
        )
    ]


def _load() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallinfo2.restype = _Mallinfo2
        libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
        libc.prctl.restype = ctypes.c_int
    except (OSError, AttributeError):  # not glibc, or older than 2.33 (no mallinfo2)
        return None
    return libc


_libc = _load()


@dataclass(frozen=True)
class MallocStats:
    """glibc's own account of its memory, summed over its arenas (bytes)."""

    in_use: int  # handed out by malloc and not freed (heaps and mmapped chunks)
    free: int  # freed but kept in the heaps (part of it may already be given back)
    heap: int  # the heaps' total size (in use + free)
    mmapped: int  # in chunks mmapped on their own (returned to the kernel when freed)


def stats() -> MallocStats | None:
    """glibc's figures (mallinfo2), or None elsewhere."""
    if _libc is None:
        return None
    m = _libc.mallinfo2()
    return MallocStats(
        in_use=m.uordblks + m.hblkhd, free=m.fordblks, heap=m.arena, mmapped=m.hblkhd
    )


def release_free_memory() -> bool:
    """Give the free pages of glibc's heaps back to the kernel (``malloc_trim(0)``). Takes a few
    milliseconds (every arena, locked in turn); call it after a large free, not per frame.
    Returns whether glibc gave anything back (False elsewhere)."""
    if _libc is None:
        return False
    start = time.monotonic()
    released = bool(_libc.malloc_trim(0))
    logger.debug("malloc_trim: %.1f ms", (time.monotonic() - start) * 1000)
    return released


def release_session_memory() -> int:
    """After a viewer's connection closed: collect the garbage it left (aiortc's objects are in
    reference cycles, which Python frees only at a full collection: a clinic's day showed each
    exam's receiver, 3,000 objects, left until one came), then give the free memory back.
    60-100 ms for 170,000 objects on a loaded 2-core PC; returns how many were collected."""
    collected = gc.collect()
    release_free_memory()
    logger.debug("after a viewer left: %d objects collected", collected)
    return collected


_PR_SET_THP_DISABLE = 41  # linux/prctl.h


def disable_transparent_huge_pages() -> bool:
    """Make this process (and its children) ineligible for transparent huge pages, whatever
    its libraries ask (``prctl(PR_SET_THP_DISABLE)``). Returns whether the kernel took it."""
    if _libc is None:
        return False
    done = _libc.prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0
    logger.debug("transparent huge pages %s", "off" if done else "left as they were")
    return done
