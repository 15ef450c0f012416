"""The C allocator (glibc malloc) under the process: its figures, and giving free memory back.

libx264 and FFmpeg's scaler allocate their buffers with malloc, sized by the picture. When the
picture size changes (the rate ladder's smaller step, and back), the old encoder's buffers are
freed and the new one's allocated. glibc keeps what was freed in its heaps, and after the first
large buffer is freed it raises its mmap threshold (up to 32 MiB), so every later picture-sized
buffer comes from a heap, not from mmap: the freed holes are kept, fragmented, and the process's
RSS steps up with the restarts although the bytes in use do not grow (measured:
docs/reliability.md, "Memory"). :func:`release_free_memory` (``malloc_trim(0)``) hands the free
pages of every heap back to the kernel; the media thread calls it after each restart.

Imports nothing of the appliance. Elsewhere than glibc both functions do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
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
