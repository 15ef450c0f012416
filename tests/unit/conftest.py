"""The unit tier's promise, enforced: no network socket, no subprocess, and seconds in all.

A unit test that opens an internet socket or starts a program fails at once with the reason (it
belongs in tests/integration); one whose call takes more than ``UNIT_SECONDS`` (less the time it
waited for a core another process held) fails after it ends (make it cheaper, or move it). Unix socket pairs stay allowed: every asyncio loop makes one
to wake itself.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from appliance import passwords

#: The most one unit test's call may take, on this project's 2-core machines.
UNIT_SECONDS = 1.0
#: scrypt's cost in the unit tier: what these tests check is who may log in and where secrets
#: go, not the hash's cost (the box's own cost, ``passwords.N``, is used everywhere else).
CHEAP_SCRYPT = 2**10

_NET_FAMILIES = {socket.AF_INET, socket.AF_INET6}


class UnitTierViolation(AssertionError):
    """A unit test reached for what only the integration tier may use."""


@pytest.fixture
def unit_tier_violations() -> list[str]:
    """What the test reached for and was refused, even if the code under test caught the error
    (a test that checks the refusal itself empties it)."""
    return []


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "N", CHEAP_SCRYPT)


@pytest.fixture(autouse=True)
def unit_tier_has_no_network_and_no_programs(
    monkeypatch: pytest.MonkeyPatch, unit_tier_violations: list[str]
) -> Iterator[None]:
    real_init = socket.socket.__init__

    def _refuse(what: str) -> UnitTierViolation:
        unit_tier_violations.append(what)
        return UnitTierViolation(f"a unit test may not {what}: move the test to tests/integration")

    def guarded_init(self: socket.socket, family: Any = -1, *args: Any, **kwargs: Any) -> None:
        if family in _NET_FAMILIES or (family == -1 and not args and "fileno" not in kwargs):
            raise _refuse("open a network socket")
        real_init(self, family, *args, **kwargs)

    def refuse_program(*args: Any, **kwargs: Any) -> Any:
        raise _refuse("start a program")

    monkeypatch.setattr(socket.socket, "__init__", guarded_init)
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse_program)
    monkeypatch.setattr(os, "posix_spawn", refuse_program)
    monkeypatch.setattr(os, "posix_spawnp", refuse_program)
    monkeypatch.setattr(os, "system", refuse_program)
    monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse_program)
    monkeypatch.setattr(asyncio, "create_subprocess_shell", refuse_program)
    yield
    if unit_tier_violations:
        pytest.fail(
            f"a unit test may not {unit_tier_violations[0]} (even where the code caught the "
            "refusal): move the test to tests/integration",
            pytrace=False,
        )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Import every module of the package before the first test, so that no test's time
    includes compiling and importing what it reaches lazily (a fresh clone has no bytecode:
    CI's first run would charge it to whichever test comes first)."""
    import importlib
    import pkgutil

    import appliance

    for module in pkgutil.walk_packages(appliance.__path__, "appliance."):
        try:
            importlib.import_module(module.name)
        except ImportError:  # the Pi's own libraries (picamera2, lgpio) are imported lazily
            pass
    # Hypothesis builds its tables of Unicode characters (all, and those a codec can encode) on
    # first use of a text strategy and caches them in .hypothesis/: seconds on a fresh clone,
    # which CI always is. Build them here, outside any test's time.
    try:
        from hypothesis.internal.charmap import charmap, intervals_from_codec
    except ImportError:  # moved in some version: the first text property pays, as before
        return
    charmap()
    for codec in ("utf-8", "ascii"):
        intervals_from_codec(codec)


def _queued() -> float:
    """Seconds this thread has spent ready to run but waiting for a core (Linux's schedstat):
    on a machine busy with other work it is subtracted, so the limit measures the test, not the
    load (it is 0 where the kernel does not say)."""
    try:
        with open("/proc/thread-self/schedstat", encoding="ascii") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    started, queued = time.monotonic(), _queued()
    result = yield
    took = time.monotonic() - started - (_queued() - queued)
    # `make fuzz` runs the properties with thousands of cases each (HYPOTHESIS_PROFILE=fuzz).
    if took > UNIT_SECONDS and os.environ.get("HYPOTHESIS_PROFILE", "default") == "default":
        pytest.fail(
            f"this unit test took {took:.2f} s, over the unit tier's {UNIT_SECONDS:.0f} s: "
            "make it cheaper or move it to tests/integration",
            pytrace=False,
        )
    return result
