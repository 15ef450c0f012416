"""Is the system clock synchronised? The Pi has no real-time clock: until NTP has set the time,
links and expiry would be wrong, so the box refuses to open sessions (the demo is exempt).

Asks systemd-timesyncd's flag file, then the kernel (adjtimex(2) returns TIME_ERROR while the
clock is unsynchronised). ``root`` lets the tests use a fake tree.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

TIME_ERROR = 5


def adjtimex_state() -> int | None:
    """adjtimex(2)'s clock state (read only), None when it cannot be asked."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex with modes = 0: read only
        state = int(libc.adjtimex(buf))
    except (OSError, AttributeError):
        return None
    return None if state < 0 else state


def is_synchronised(root: Path = Path("/")) -> bool:
    if (root / "run/systemd/timesync/synchronized").exists():
        return True
    state = adjtimex_state() if root == Path("/") else None
    return state is not None and state != TIME_ERROR
