"""Whether the network impairment rig (bench/netem) can run here: root, in a loopback-only
network namespace (tests/run.sh makes one). Under CI as root it must run: a test marked with
:data:`needs_rig` then runs and fails loudly rather than skip."""

from __future__ import annotations

import os

import pytest

from bench.netem import NotIsolated, check_isolated


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the rig needs root"
    try:
        check_isolated()
    except NotIsolated as exc:
        return f"not in a loopback-only network namespace ({exc}); run tests/run.sh"
    return None


WHY = _unavailable()
#: An untouched path's one-way delay at the 95th percentile, as the probe's receiver thread stamps
#: it on a busy machine (its median stays under 5 ms); every impairment the tests remove adds
#: 40 ms or more, or drops datagrams (checked with ``loss == 0`` beside it).
UNTOUCHED_P95_MS = 30
MUST_RUN = os.environ.get("CI") == "true" and os.geteuid() == 0
#: Skip a test that needs the rig where it cannot run, except under CI as root.
needs_rig = pytest.mark.skipif(WHY is not None and not MUST_RUN, reason=WHY or "")


def require_rig() -> None:
    """Fail (never skip) a test that got this far without the rig: CI as root must run it."""
    if WHY is not None:
        pytest.fail(f"CI as root must run the rig's tests: {WHY}")
