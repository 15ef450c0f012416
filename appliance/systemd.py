"""sd_notify without a dependency: READY=1, WATCHDOG=1, STOPPING=1, STATUS=... to systemd.

The appliance runs as a Type=notify service with WatchdogSec: the core's loop sends WATCHDOG=1
from a task, so a stalled loop (not just a dead process) gets the service restarted. Outside
systemd (the demo, the tests) every call is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

logger = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send ``message`` to $NOTIFY_SOCKET; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            # never blocks (it is sent from the core's loop): a full queue is a failed ping
            sock.setblocking(False)
            sock.connect(address)
            sock.send(message.encode())
    except OSError as exc:
        logger.warning("sd_notify failed: %s", type(exc).__name__)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), None when no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.5, int(usec) / 1e6 / 2)
    except ValueError:
        return None


async def watchdog() -> None:
    """Ping systemd's watchdog from the event loop until cancelled."""
    interval = watchdog_interval()
    if interval is None:
        return
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
