"""Network impairment rig for tests and benchmarks: see docs/reliability.md.

Everything runs inside a loopback-only network namespace (``unshare -n``) as root; the box's
media is sent from 127.0.0.2 so that one direction (box -> phone) can be impaired alone; one TCP
flow (the box's TURN-over-TCP upload) is picked by its port.
"""

from .probe import BOX, PHONE, ProbeResult, run_probe
from .profile import Profile
from .rig import (
    RFC8867_DURATION_S,
    RFC8867_REFERENCE_MBIT,
    RFC8867_STEPS,
    Impairment,
    NotIsolated,
    RigError,
    check_isolated,
    rfc8867_steps,
)
from .tcpprobe import TcpProbe, TcpProbeResult

__all__ = [
    "BOX",
    "PHONE",
    "RFC8867_DURATION_S",
    "RFC8867_REFERENCE_MBIT",
    "RFC8867_STEPS",
    "Impairment",
    "NotIsolated",
    "Profile",
    "ProbeResult",
    "RigError",
    "TcpProbe",
    "TcpProbeResult",
    "check_isolated",
    "rfc8867_steps",
    "run_probe",
]
