"""The rig's commands (``tc``, ``nft``, ``iptables``, ``ip``) and its guard: a loopback-only
network namespace of our own, or nothing runs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

_SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


class RigError(RuntimeError):
    """A command of the rig failed, or the rig is used where it must not be."""


class NotIsolated(RigError):
    """Not inside a loopback-only network namespace of our own."""


def check_isolated() -> None:
    """Raise NotIsolated unless this is a private network namespace with only ``lo``, up."""
    names = {name for _, name in socket.if_nameindex()}
    if names != {"lo"}:
        raise NotIsolated(f"interfaces besides lo: {sorted(names - {'lo'})}; use unshare -n")
    try:
        own = os.stat("/proc/self/ns/net").st_ino
        init = os.stat("/proc/1/ns/net").st_ino
    except OSError:
        pass  # cannot tell; only lo exists, so nothing can leave anyway
    else:
        if own == init:
            raise NotIsolated("this is the machine's own network namespace; use unshare -n")
    flags = int(Path("/sys/class/net/lo/flags").read_text(), 16)
    if not flags & 1:
        raise NotIsolated("lo is down: ip link set lo up")


def tool(name: str) -> str:
    """The path of ``tc``, ``nft``, ``iptables`` or ``ip`` (often only in /usr/sbin)."""
    found = shutil.which(name, path=_SBIN)
    if found is None:
        raise RigError(f"{name} is not installed (make system-deps)")
    return found


def run(*args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run one of the rig's commands; its output, or RigError when it fails (``check``)."""
    done = subprocess.run(
        [tool(args[0]), *args[1:]], input=stdin, capture_output=True, text=True, timeout=10
    )
    if check and done.returncode != 0:
        raise RigError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout
