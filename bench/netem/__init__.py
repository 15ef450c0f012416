"""Network impairment rig for tests and benchmarks: see docs/reliability.md.

Everything runs inside a loopback-only network namespace (``unshare -n``) as root; the box's
media is sent from 127.0.0.2 so that one direction (box -> phone) can be impaired alone.
"""

from .probe import BOX, PHONE, ProbeResult, run_probe

__all__ = ["BOX", "PHONE", "ProbeResult", "run_probe"]
